"""What git runs besides its own code, as tables: its builtin commands (an alias of one is
never used), the hooks each subcommand may run and which of them read a message file or
standard input, the options and environment variables whose value is a command, and which
subcommands skip hooks with --no-verify.
"""

from __future__ import annotations

from guard.shell.words import Field, names

# git's own commands: an alias of one of these names is never used.
BUILTIN = names(
    "add am annotate apply archive bisect blame branch bugreport bundle cat-file check-attr "
    "check-ignore check-mailmap check-ref-format checkout checkout--worker checkout-index "
    "cherry cherry-pick citool clean clone column commit commit-graph commit-tree config "
    "count-objects credential credential-cache credential-cache--daemon credential-store "
    "daemon describe diagnose diff diff-files diff-index diff-tree difftool fast-export "
    "fast-import fetch fetch-pack filter-branch fmt-merge-msg for-each-ref for-each-repo "
    "format-patch fsck fsck-objects fsmonitor--daemon gc get-tar-commit-id grep gui "
    "hash-object help hook http-backend http-fetch http-push imap-send index-pack init "
    "init-db instaweb interpret-trailers log ls-files ls-remote ls-tree mailinfo mailsplit "
    "maintenance merge merge-base merge-file merge-index merge-octopus merge-one-file "
    "merge-ours merge-recursive merge-recursive-ours merge-recursive-theirs merge-resolve "
    "merge-subtree merge-tree mergetool mktag mktree multi-pack-index mv name-rev notes "
    "p4 pack-objects pack-redundant pack-refs patch-id prune prune-packed pull push "
    "quiltimport range-diff read-tree rebase receive-pack reflog refs remote remote-ext "
    "remote-fd remote-ftp remote-ftps remote-http remote-https repack replace replay "
    "request-pull rerere reset restore rev-list rev-parse revert rm send-email send-pack "
    "sh-i18n--envsubst shell shortlog show show-branch show-index show-ref sparse-checkout "
    "stage stash status stripspace submodule submodule--helper subtree svn switch "
    "symbolic-ref tag unpack-file unpack-objects update-index update-ref update-server-info "
    "upload-archive upload-archive--writer upload-pack var verify-commit verify-pack "
    "verify-tag version web--browse whatchanged worktree write-tree"
)


# The hooks each subcommand may run (git's documentation, githooks(5)).
COMMIT_HOOKS = "pre-commit prepare-commit-msg commit-msg post-commit post-rewrite pre-auto-gc"


HOOKS: dict[str, tuple[str, ...]] = {
    k: tuple(v.split())
    for k, v in {
        "commit": COMMIT_HOOKS,
        "merge": "pre-merge-commit prepare-commit-msg commit-msg post-merge pre-auto-gc",
        "pull": (
            "pre-merge-commit prepare-commit-msg commit-msg post-merge pre-rebase post-rewrite "
            "post-checkout pre-auto-gc"
        ),
        "rebase": "pre-rebase post-rewrite post-checkout prepare-commit-msg commit-msg pre-auto-gc",
        "am": "applypatch-msg pre-applypatch post-applypatch post-rewrite prepare-commit-msg "
        "pre-auto-gc",
        "cherry-pick": COMMIT_HOOKS,
        "revert": COMMIT_HOOKS,
        "checkout": "post-checkout",
        "switch": "post-checkout",
        "clone": "post-checkout",
        "worktree": "post-checkout",
        "push": "pre-push",
        "receive-pack": "pre-receive update proc-receive post-receive post-update push-to-checkout",
        "gc": "pre-auto-gc",
        "maintenance": "pre-auto-gc",
        "fetch": "pre-auto-gc",
        "send-email": "sendemail-validate",
        "p4": "p4-pre-submit p4-prepare-changelist p4-changelist p4-post-changelist",
    }.items()
}


# Subcommands that update refs run reference-transaction; those that write the index run
# post-index-change (``git status`` refreshes it).
REF_WRITERS = names(
    "commit merge pull rebase am checkout switch clone worktree push receive-pack cherry-pick "
    "revert fetch branch tag update-ref reset stash notes replace symbolic-ref pack-refs "
    "filter-branch"
)


INDEX_WRITERS = names(
    "add rm mv commit checkout switch reset restore merge rebase pull stash status apply "
    "cherry-pick revert am update-index read-tree sparse-checkout"
)


NO_VERIFY = {
    "commit": ("pre-commit", "commit-msg"),
    "merge": ("pre-merge-commit", "commit-msg"),
    "pull": ("pre-merge-commit", "commit-msg"),
    "am": ("applypatch-msg", "pre-applypatch"),
    "push": ("pre-push",),
}


ALL_HOOKS = tuple(
    sorted(
        {h for hooks in HOOKS.values() for h in hooks}
        | {"reference-transaction", "post-index-change", "fsmonitor-watchman"}
    )
)


# Hooks given the commit message file, and hooks that read their standard input.
MESSAGE_HOOKS = names("commit-msg prepare-commit-msg applypatch-msg")


STDIN_HOOKS = names(
    "pre-push pre-receive post-receive reference-transaction post-rewrite proc-receive"
)


# Options of subcommands whose value is a command git runs.
CODE_OPTIONS: dict[str, tuple[str, ...]] = {
    "rebase": ("-x", "--exec"),
    "clone": ("-u", "--upload-pack"),
    "fetch": ("--upload-pack",),
    "pull": ("--upload-pack",),
    "ls-remote": ("--upload-pack",),
    "push": ("--receive-pack", "--exec"),
    "archive": ("--exec",),
    "difftool": ("-x", "--extcmd"),
    "send-email": ("--to-cmd", "--cc-cmd", "--sendmail-cmd", "--header-cmd"),
    "filter-branch": (
        "--setup",
        "--env-filter",
        "--tree-filter",
        "--index-filter",
        "--parent-filter",
        "--msg-filter",
        "--commit-filter",
        "--tag-name-filter",
    ),
    "instaweb": ("-d", "--httpd"),
}


# Environment variables that name a command git runs: shell text, or a program.
ENV_CODE = {
    "GIT_SSH_COMMAND": "shell",
    "GIT_EXTERNAL_DIFF": "shell",
    "GIT_PAGER": "maybe-shell",
    "GIT_EDITOR": "shell",
    "GIT_SEQUENCE_EDITOR": "shell",
    "PAGER": "maybe-shell",
    "EDITOR": "shell",
    "VISUAL": "shell",
    "GIT_SSH": "program",
    "GIT_ASKPASS": "program",
    "SSH_ASKPASS": "program",
    "GIT_PROXY_COMMAND": "program",
}


def no_verify(sub: str, rest: list[Field]) -> bool:
    """Whether ``--no-verify`` (``-n`` for commit) is given as an option, not as the value of
    another option or a path after ``--``."""
    pending = False  # this word is the previous option's value
    for a in rest:
        if pending:
            pending = False
            continue
        if not a.known:
            continue
        v = a.value
        if v == "--":
            return False
        if v == "--no-verify":
            return True
        if v in VALUE_LONG:
            pending = True
        elif v.startswith("-") and not v.startswith("--"):
            for k, ch in enumerate(v[1:]):
                if ch in VALUE_LETTERS:
                    pending = k == len(v) - 2  # nothing attached: the next word is the value
                    break
                if ch in ATTACHED_LETTERS:
                    break
                if ch == "n" and sub == "commit":
                    return True
    return False


__all__ = [
    "ALL_HOOKS",
    "ATTACHED_LETTERS",
    "BUILTIN",
    "CODE_OPTIONS",
    "COMMIT_HOOKS",
    "ENV_CODE",
    "HOOKS",
    "INDEX_WRITERS",
    "MESSAGE_HOOKS",
    "NO_VERIFY",
    "REF_WRITERS",
    "STDIN_HOOKS",
    "VALUE_LETTERS",
    "VALUE_LONG",
    "no_verify",
]


# Options of commit, merge, pull, push and am whose value is the next word when not attached:
# that word is a value (`git commit -m -n` is a message "-n"), not an option.
VALUE_LETTERS = "mFcCtoXs"


ATTACHED_LETTERS = "Su"  # -S[KEYID], -u[MODE]: a value only when attached


VALUE_LONG = names(
    "--message --file --reuse-message --reedit-message --template --author --date --cleanup "
    "--fixup --squash --trailer --pathspec-from-file --strategy --strategy-option "
    "--push-option --repo --receive-pack --exec --resolvemsg --patch-format --directory "
    "--exclude --include --upload-pack"
)
