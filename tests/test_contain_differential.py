"""Contained and plain runs of the same benign commands, from identical trees, leave identical
trees (content, modes, symlinks, modification times to the second) and print the same output.

The corpus is ordinary work on the agent's own files: archives, copies, in-place edits, git,
find, pipelines, jq, python -c and sqlite. Each command runs twice: with ``bash -c`` on one copy
of the tree, and through the :class:`~guard.contain.ContainedShell` on the other, then the two
trees are compared file by file.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from guard.contain import ContainedShell
from guard.engine import Guard
from guard.testing import MemorySink

GIT_ENV = (
    "export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@x GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@x "
    "GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'; "
)

CORPUS = [
    # copies, moves and deletes of own files
    "cp data/a.txt data/a2.txt",
    "cp -p data/a.txt data/a3.txt",
    "cp -r data data-copy",
    "cp -a data data-archive",
    "mv data/b.txt data/b-renamed.txt",
    "mv data sub/moved-data",
    "rm data/a.txt",
    "rm -r data",
    "rm -rf sub && mkdir sub && echo again > sub/f",
    "mkdir -p x/y/z && touch x/y/z/empty",
    "ln -s data/a.txt link-a && cat link-a",
    "ln data/a.txt hard-a && cat hard-a",
    "install -m 640 data/a.txt data/installed",
    "rsync -a data/ mirror/",
    "cp data/*.txt sub/ && ls sub",
    "touch -d '2020-02-02 02:02:02' data/a.txt && stat -c %Y data/a.txt",
    "chmod 600 data/a.txt && stat -c %a data/a.txt",
    "chmod -R go-rwx data && stat -c %a data data/b.txt",
    "mkdir -m 700 private && stat -c %a private",
    "truncate -s 10 data/a.txt && wc -c data/a.txt",
    "dd if=data/a.txt of=data/dd.out bs=1 count=3 status=none",
    "rm -rf data/nested && ls data",
    "mv data/a.txt data/b.txt",
    "cp data/a.txt data/b.txt",
    "rmdir empty",
    "mkdir empty/child && rmdir empty/child",
    "echo replaced > data/a.txt",
    "echo appended >> data/a.txt",
    ": > data/a.txt",
    "printf 'one\\ntwo\\n' > data/new.txt && cat data/new.txt",
    # in-place edits
    "sed -i 's/alpha/ALPHA/' data/a.txt",
    "sed -i.bak 's/beta/BETA/' data/b.txt",
    "sed -i -e '1d' data/lines.txt",
    "sed -i '$a tail' data/lines.txt",
    "perl -pi -e 's/line/LINE/' data/lines.txt",
    "python3 -c \"import pathlib; p=pathlib.Path('data/a.txt'); p.write_text(p.read_text().upper())\"",
    "awk '{print toupper($0)}' data/lines.txt > data/upper.txt",
    "sort -r data/lines.txt -o data/lines.txt",
    "tr a-z A-Z < data/a.txt > data/tr.txt",
    "tee data/t1 data/t2 < data/a.txt > /dev/null",
    # archives and codecs
    "tar cf data.tar data",
    "tar czf data.tgz data && tar tzf data.tgz | sort",
    "tar cjf data.tbz data",
    "tar cJf data.txz data",
    "tar cf - data | tar xf - -C sub",
    "tar czf d.tgz data && rm -r data && tar xzf d.tgz",
    "gzip data/a.txt",
    "gzip -k data/b.txt",
    "gzip -c data/lines.txt > lines.gz && gunzip -c lines.gz | wc -l",
    "bzip2 -k data/a.txt",
    "xz -k data/b.txt",
    "zip -X -q -r data.zip data && unzip -l data.zip | tail -1",
    "zip -X -q one.zip data/a.txt && mkdir out && unzip -q one.zip -d out",
    "base64 data/a.txt > a.b64 && base64 -d a.b64",
    "split -b 4 data/a.txt parts/p. && cat parts/p.* > joined.txt && cmp joined.txt data/a.txt",
    "sha256sum data/a.txt data/b.txt > sums && sha256sum -c sums",
    "md5sum data/*.txt | sort",
    "od -c data/a.txt | head -2",
    "xxd data/a.txt | head -1",
    "cat data/a.txt data/b.txt | gzip > both.gz",
    # git
    GIT_ENV + "git init -q repo && cp data/a.txt repo/ && git -C repo add a.txt && "
    "git -C repo commit -qm first && git -C repo log --format=%s",
    GIT_ENV + "git init -q repo && cd repo && echo x > f && git add f && git commit -qm one && "
    "git rm -q f && git commit -qm two && git log --oneline | wc -l",
    GIT_ENV + "git init -q r && cd r && echo a > f && git add f && git commit -qm c && "
    "git checkout -qb side && echo b > f && git commit -qam d && git checkout -q - && cat f",
    GIT_ENV + "git init -q r && cd r && echo a > f && git add f && git commit -qm c && "
    "git archive --format=tar HEAD | tar tf -",
    GIT_ENV + "git init -q r && cd r && git config user.name b && git config --get user.name",
    GIT_ENV + "git init -q --bare bare.git && git --git-dir=bare.git config core.bare",
    GIT_ENV + "git init -q r && cd r && echo a > f && git add f && git commit -qm c && "
    "git tag v1 && git tag",
    GIT_ENV + "git init -q r && cd r && echo a > f && git add f && git stash -q 2>/dev/null; "
    "git status --short | wc -l",
    # find and friends
    "find data -type f | sort",
    "find data -name '*.txt' -delete && find data | sort",
    "find data -type f -exec chmod 600 {} + && stat -c %a data/a.txt",
    "find data -name '*.txt' -exec cp {} sub/ \\; && ls sub | sort",
    "find . -maxdepth 1 -type d | sort",
    "find data -type f -print0 | xargs -0 wc -c | tail -1",
    "find data -newer data/a.txt | sort",
    "ls data | xargs -I{} cp data/{} sub/{}.bak && ls sub",
    "du -a data | sort -k2 | cut -f2",
    'tree=$(find data | sort); echo "$tree" > listing.txt',
    # pipelines and shell features
    "cat data/lines.txt | grep line | wc -l",
    "grep -c line data/lines.txt",
    "grep -rl alpha . | sort",
    "head -n 2 data/lines.txt | tail -n 1",
    "cut -d' ' -f1 data/lines.txt | sort | uniq -c",
    'for f in data/*.txt; do cp "$f" "$f.orig"; done; ls data | sort',
    'i=0; while read -r l; do i=$((i+1)); echo "$i $l"; done < data/lines.txt > numbered',
    'x=$(cat data/a.txt); echo "${x^^}" > up.txt',
    "mkdir -p logs && { echo start; echo end; } > logs/run.log",
    "exec 3> fd.out; echo via-fd >&3; exec 3>&-; cat fd.out",
    "diff data/a.txt data/b.txt > d.diff; echo $?",
    "comm -12 <(sort data/a.txt) <(sort data/b.txt)",
    "paste data/a.txt data/b.txt > pasted",
    "yes line | head -n 1000 > many && wc -l many",
    "seq 1 50 | awk '{s+=$1} END {print s}'",
    "echo $((6*7)) > answer",
    "cd data && cp a.txt ../from-subdir.txt && cd .. && ls",
    "bash -c 'echo nested > nested.txt'",
    "sh -c 'mkdir -p a/b; echo deep > a/b/c'",
    "(cd sub && touch made-in-subshell)",
    "umask 077 && echo secret > secret && stat -c %a secret",
    "mkfifo pipe1 && ls -l pipe1 | cut -c1",
    "echo 'err' >&2; echo out",
    "false; echo $?",
    # jq, python, sqlite
    "jq '.name' data/conf.json",
    "jq '.count += 1' data/conf.json > tmp.json && mv tmp.json data/conf.json",
    "jq -c '.items | map(. * 2)' data/conf.json > doubled.json",
    "python3 -c \"import json; d=json.load(open('data/conf.json')); d['x']=1; "
    "json.dump(d, open('data/conf.json','w'), sort_keys=True)\"",
    "python3 -c \"import shutil; shutil.copytree('data', 'pycopy')\"",
    "python3 -c \"import os; os.makedirs('p/q', exist_ok=True); open('p/q/r','w').write('r')\"",
    "python3 -c \"import os; os.rename('data/a.txt', 'renamed.txt')\"",
    "python3 -c \"import os; os.remove('data/b.txt'); print('removed')\"",
    "python3 -c \"import zipfile; z=zipfile.ZipFile('py.zip','w'); z.write('data/a.txt'); z.close()\"",
    "python3 -c \"import hashlib; print(hashlib.sha256(open('data/a.txt','rb').read()).hexdigest())\"",
    "sqlite3 db.sqlite 'create table t(x); insert into t values (1),(2); select sum(x) from t;'",
    "sqlite3 db.sqlite 'create table t(x)' && sqlite3 db.sqlite 'select count(*) from t'",
    "make -s -f data/Makefile",
    "cat data/a.txt > /dev/null; echo discarded",
    "cp /etc/hostname host-copy 2>/dev/null || echo none > host-copy",
    "echo scratch > /tmp/work-$RANDOM && echo tmp-ok",
]


def _tree(root: Path) -> dict[str, tuple[str, str, int, bytes | str]]:
    out: dict[str, tuple[str, str, int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            body: bytes | str
            if stat.S_ISLNK(st.st_mode):
                kind, body = "link", os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                kind, body = "dir", ""
            elif stat.S_ISFIFO(st.st_mode):
                kind, body = "fifo", ""
            elif name == "index" and dirpath.endswith("/.git"):
                # git's index caches each file's inode and times: compare what it lists
                listed = subprocess.run(["git", "ls-files", "-s"], cwd=os.path.dirname(dirpath),
                                        capture_output=True, check=True)  # fmt: skip
                kind, body = "git index", listed.stdout
            else:
                kind, body = "file", Path(path).read_bytes()
            out[os.path.relpath(path, root)] = (kind, oct(stat.S_IMODE(st.st_mode)),
                                                st.st_mtime_ns, body)  # fmt: skip
    return out


def _seed(root: Path) -> None:
    (root / "data" / "nested" / "deeper").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "parts").mkdir()
    (root / "empty").mkdir()
    (root / "data" / "a.txt").write_text("alpha\n")
    (root / "data" / "b.txt").write_text("beta\n")
    (root / "data" / "lines.txt").write_text("line one\nline two\nline three\n")
    (root / "data" / "nested" / "deeper" / "n.txt").write_text("nested\n")
    (root / "data" / "conf.json").write_text('{"name": "agent", "count": 1, "items": [1, 2]}\n')
    (root / "data" / "Makefile").write_text("all:\n\techo built > built.txt\n")
    os.utime(root / "data" / "a.txt", (1_700_000_000, 1_700_000_000))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starting tree, made once (its copies keep its modification times)."""
    base = tmp_path_factory.mktemp("pristine") / "tree"
    _seed(base)
    return base


def test_the_corpus_is_large() -> None:
    """At least 100 commands, all different."""
    assert len(CORPUS) >= 100 and len(set(CORPUS)) == len(CORPUS)


@pytest.mark.parametrize("command", CORPUS, ids=[str(i) for i in range(len(CORPUS))])
def test_contained_equals_plain(tmp_path: Path, pristine: Path, command: str) -> None:
    """Same tree, same output, contained or not."""
    plain, kept = tmp_path / "plain" / "tree", tmp_path / "contained" / "tree"
    shutil.copytree(pristine, plain, symlinks=True)
    shutil.copytree(pristine, kept, symlinks=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "RANDOM": "1"}
    shell = ContainedShell(Guard(root=kept, sinks=[MemorySink()]), env=env)
    shell.run("true", agent="agent-1")  # the starter is up: the two runs follow each other
    direct = subprocess.run(["bash", "-c", command], cwd=plain, capture_output=True, env=env,
                            timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    res = shell.run(command, agent="agent-1")
    assert res.committed, res.decision.reason
    assert (res.stdout, res.stderr, res.exit_code) == (
        direct.stdout.decode(),
        direct.stderr.decode(),
        direct.returncode,
    )
    a, b = _tree(plain), _tree(kept)
    assert sorted(a) == sorted(b)
    for name in a:
        (kind_a, mode_a, mtime_a, body_a), (kind_b, mode_b, mtime_b, body_b) = a[name], b[name]
        assert (kind_a, mode_a, body_a) == (kind_b, mode_b, body_b), name
        assert abs(mtime_a - mtime_b) <= 1_000_000_000, (name, mtime_a, mtime_b)
