"""Shell-command analysis: what a command line would do, before it runs.

The command is parsed with tree-sitter's bash grammar and the tree is walked the way bash would run
it: words are expanded (quotes, ANSI-C escapes, variables, ``~``, braces, globs against the real
filesystem), ``cd`` moves the working directory, and every command resolves through a table of
handlers that turn arguments into :class:`~guard.types.Effect` values. Data is followed through
pipes, redirects, command substitutions and ``ssh``: ``tar cf - d | ssh backup 'tar xf -'`` is a
copy of ``d`` to the backup host, whatever it went through on the way (gzip, base64, split).

Shell text inside the command (``bash -c``, ``eval``, ``ssh HOST CMD``, heredocs fed to a shell,
scripts read from disk at call time) is analysed the same way, one level deeper; code given to
Python and other interpreters is inspected for the paths it mentions and the APIs it uses. So is
shell text that programs run from their own files: make recipes, package.json scripts, git
hooks, aliases and settings.

The analyser is built for an adversary: anything it cannot follow (an obfuscated command name, an
unknown variable, decoded text run as a script, a bound reached) becomes an ``UNKNOWN`` effect with
``certain=False``, never an exception and never silence.

Public interface: :class:`ShellContext`, :func:`analyse` and :func:`apply_sed`.

Inside: ``core`` walks the tree, ``expand`` expands words (``globs`` matches their patterns
over what the line builds), ``variables`` assigns as bash does (attributes, scopes, and the
values bash runs as code, with ``arith`` for arithmetic), ``record`` keeps the effects, the
bounds and what the line made so far, ``words``, ``options`` and ``common`` hold what handlers share; the
command table is filled by
``reading`` (cat, grep, sort...), ``fileops`` (cp, mv, rm...), ``attributes`` (chmod...),
``editors`` (sed, ed, jq, yq...), ``awk``, ``printing`` (echo, printf), ``find``, ``archives`` (tar, zip, cpio, split...), ``codec`` (gzip, base64, openssl...), ``remote``
(ssh, scp, rsync, sftp), ``network`` (curl, wget, netcat, cloud copies...), ``reentry`` (running text, files and standard input as code), ``builtins`` (cd, eval,
source, read...), ``wrappers`` (sudo, env, timeout, tracers...), ``xargs``, ``interp``
(interpreters, with ``code`` for the code they are given), ``build`` (make and other
build tools, with ``makefile`` to read makefiles), ``packages`` (npm, yarn, pnpm) and ``vcs``
(git, its hooks, aliases and command-valued settings, with ``gitconfig`` to read its config
files); ``sed`` simulates edits.
"""

from guard.shell import (  # noqa: F401 - importing them fills the command table
    archives,
    attributes,
    awk,
    build,
    builtins,
    codec,
    deferred,
    editors,
    fileops,
    find,
    interp,
    network,
    packages,
    printing,
    reading,
    reentry,
    remote,
    shells,
    vcs,
    wrappers,
    xargs,
)
from guard.shell.core import ShellContext, analyse
from guard.shell.sed import apply_sed

__all__ = ["ShellContext", "analyse", "apply_sed"]
