"""Archives, compressors, encoders, ``split``, ``dd`` and links: copies under another form."""

from __future__ import annotations

from guard.types import EffectKind
from tests.shellworld import (
    WEIGHTS,
    World,
    find,
    shell_world,  # noqa: F401 - the world fixture
)

K = EffectKind


# ---------------------------------------------------- archives and encodings


def test_split_copies_into_chunks(world: World) -> None:
    """split FILE PREFIX copies the file's content into the chunk files."""
    effects = world.run(f"split -b 1M {WEIGHTS} docs/part_")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/part_aa"))


def test_gzip_in_place_is_copy_and_delete(world: World) -> None:
    """gzip FILE replaces FILE with FILE.gz: a copy to .gz and a delete of the original."""
    effects = world.run(f"gzip -9 {WEIGHTS}")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p(WEIGHTS + ".gz"))
    assert find(effects, K.DELETE, target_path=world.p(WEIGHTS))


def test_gzip_keep_and_stdout_forms(world: World) -> None:
    """gzip -k keeps the original; gzip -c > OUT copies to OUT."""
    kept = world.run(f"gzip -k {WEIGHTS}")
    assert find(kept, K.COPY) and not find(kept, K.DELETE)
    piped = world.run(f"gzip -c {WEIGHTS} > docs/w.gz")
    assert find(piped, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/w.gz"))
    assert not find(piped, K.DELETE)


def test_tar_create_archive_and_remove_files(world: World) -> None:
    """tar czf ARCH DIR --remove-files copies DIR into ARCH and deletes DIR."""
    effects = world.run("tar czf docs/a.tgz --remove-files hosts/decom-01/data")
    assert find(
        effects,
        K.COPY,
        target_path=world.p("hosts/decom-01/data"),
        dest_path=world.p("docs/a.tgz"),
        recursive=True,
    )
    assert find(effects, K.DELETE, target_path=world.p("hosts/decom-01/data"), recursive=True)


def test_zip_and_encoders_copy(world: World) -> None:
    """zip, base64 -w0 > f, xxd and openssl enc all produce copies of their input."""
    for command, dest in [
        (f"zip -r docs/a.zip {WEIGHTS}", "docs/a.zip"),
        (f"base64 -w0 {WEIGHTS} > docs/w.b64", "docs/w.b64"),
        (f"xxd -p {WEIGHTS} docs/w.hex", "docs/w.hex"),
        (f"openssl enc -aes-256-cbc -k pw -in {WEIGHTS} -out docs/w.enc", "docs/w.enc"),
        (f"cat {WEIGHTS} docs/readme.txt > docs/joined", "docs/joined"),
        (f"bzip2 -c < {WEIGHTS} > docs/w.bz2", "docs/w.bz2"),
        (f"install -m 644 {WEIGHTS} docs/w.inst", "docs/w.inst"),
    ]:
        effects = world.run(command)
        assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p(dest)), command


def test_dd_copies_input_to_output(world: World) -> None:
    """dd if=A of=B is a copy of A to B."""
    effects = world.run(f"dd if={WEIGHTS} of=docs/w.img bs=4k status=none")
    assert find(effects, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/w.img"))


def test_hard_link_is_copy_symlink_is_write(world: World) -> None:
    """ln keeps the content alive under another name (COPY); ln -s only writes a link."""
    hard = world.run(f"ln {WEIGHTS} docs/w")
    assert find(hard, K.COPY, target_path=world.p(WEIGHTS), dest_path=world.p("docs/w"))
    soft = world.run(f"ln -sf ../{WEIGHTS} docs/w")
    assert find(soft, K.WRITE, target_path=world.p("docs/w")) and not find(soft, K.COPY)
