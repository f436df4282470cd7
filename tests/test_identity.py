"""Function identity: every call is keyed by what it really computes (issue: Exactness II).

Each test below is a wrong hit, a false miss or a hang that an earlier version had.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.cachekey import code_fingerprint, identify

SRC = str(Path(bs.__file__).resolve().parents[1])


# -- lambdas, closures, decorators ------------------------------------------------------------


def test_two_lambdas_in_one_module_do_not_share_results(spot: bs.Spot) -> None:
    plus_one = spot.mark(lambda x: x + 1)
    times_hundred = spot.mark(lambda x: x * 100)
    assert plus_one(5) == 6
    assert times_hundred(5) == 500


def test_closures_made_by_a_factory_do_not_share_results(spot: bs.Spot) -> None:
    def make(k: int) -> Any:
        @spot.mark
        def mul(x: int) -> int:
            return x * k

        return mul

    assert make(2)(10) == 20
    assert make(3)(10) == 30
    assert make(2).is_cached(10) and not make(4).is_cached(10)


def test_closure_values_are_read_at_decoration_not_at_each_call(spot: bs.Spot) -> None:
    seen: list[int] = []

    @spot.mark
    def log(x: int) -> int:
        seen.append(x)  # a side channel: it must not change the function's keys
        return x

    assert [log(1), log(1), log(2), log(1)] == [1, 1, 2, 1]
    assert seen == [1, 2]


def test_a_closure_variable_that_cannot_be_keyed_is_an_error_at_decoration(
    spot: bs.Spot,
) -> None:
    import threading

    client = threading.Lock()  # stands for an API client captured from the enclosing scope

    def ask(prompt: str) -> str:
        with client:
            return prompt.upper()

    with pytest.raises(bs.CacheKeyError, match=r"closure variable 'client'.*ignore=\('client',\)"):
        spot.mark(ask)
    assert spot.mark(ignore=("client",))(ask)("hi") == "HI"


def scaled(k: int) -> Any:
    def decorator(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs) * k

        return wrapper

    return decorator


def raw(x: int) -> int:
    return x


def test_parametrised_wraps_decorators_do_not_share_results(spot: bs.Spot) -> None:
    assert spot.mark(scaled(2)(raw))(10) == 20
    assert spot.mark(scaled(3)(raw))(10) == 30


def translate(text: str, lang: str = "en") -> str:
    return f"{text}:{lang}"


def test_binding_uses_the_signature_the_caller_calls(spot: bs.Spot) -> None:
    @functools.wraps(translate)
    def french(text: str, lang: str = "fr") -> str:
        return translate(text, lang)

    assert spot.mark(french)("hi") == "hi:fr"
    assert spot.mark(translate)("hi", "en") == "hi:en"
    assert spot.mark(translate)("hi") == "hi:en"


def test_a_star_args_wrapper_binds_by_the_wrapped_signature(spot: bs.Spot) -> None:
    calls: list[Any] = []

    def logged(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return fn(*args, **kwargs)

        return wrapper

    marked = spot.mark(logged(translate))
    assert marked("hi") == marked(text="hi", lang="en") == "hi:en"
    assert len(calls) == 1  # defaults applied: one key for both spellings


# -- methods and receivers ------------------------------------------------------------------


class Model:
    def __init__(self, k: int) -> None:
        self.k = k

    def predict(self, x: int) -> int:
        return x * self.k


class Base:
    factor = 1

    @classmethod
    def make(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"


class Sub(Base):
    pass


def test_bound_methods_are_keyed_by_their_receiver(spot: bs.Spot) -> None:
    assert spot.mark(Model(2).predict)(10) == 20
    assert spot.mark(Model(3).predict)(10) == 30


def test_an_inherited_classmethod_is_keyed_by_the_class_it_was_looked_up_on(
    spot: bs.Spot,
) -> None:
    assert spot.mark(Base.make)(1) == "Base:1"
    assert spot.mark(Sub.make)(1) == "Sub:1"


def test_marked_methods_key_self_like_any_argument(spot: bs.Spot) -> None:
    class Adder:
        def __init__(self, k: int) -> None:
            self.k = k

        @spot.mark
        def run(self, x: int) -> int:
            return x * self.k

    assert Adder(2).run(5) == 10
    assert Adder(3).run(5) == 15


def test_an_unkeyable_self_is_refused_without_advice_to_ignore_it(spot: bs.Spot) -> None:
    import threading

    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        @spot.mark
        def run(self, x: int) -> int:
            return x

    with pytest.raises(bs.CacheKeyError) as caught:
        Holder().run(1)
    message = str(caught.value)
    assert "__beautyspot_key__" in message
    assert "ignore=('self'" not in message


def test_static_and_class_methods_in_either_decorator_order(spot: bs.Spot) -> None:
    class Tools:
        @spot.mark
        @staticmethod
        def st1(x: int) -> int:
            return x + 1

        @staticmethod
        @spot.mark
        def st2(x: int) -> int:
            return x + 2

        @spot.mark
        @classmethod
        def cm1(cls, x: int) -> str:
            return f"{cls.__name__}{x}"

        @classmethod
        @spot.mark
        def cm2(cls, x: int) -> str:
            return f"{cls.__name__}{x}!"

    class More(Tools):
        pass

    assert Tools().st1(1) == Tools.st1(1) == 2
    assert Tools().st2(1) == Tools.st2(1) == 3
    assert Tools.cm1(1) == "Tools1" and More.cm1(1) == "More1"
    assert Tools.cm2(1) == "Tools1!" and More.cm2(1) == "More1!"


# -- code fingerprints, version="auto" and the stale-code warning ----------------------------


def test_fingerprints_ignore_lines_and_see_nested_code() -> None:
    def compiled(source: str) -> Any:
        namespace: dict[str, Any] = {}
        exec(compile(source, "<test>", "exec"), namespace)
        return namespace["outer"].__code__

    one = compiled("def outer():\n    return lambda: 1\n")
    moved = compiled("\n\n\ndef outer():\n\n    return lambda: 1\n")
    two = compiled("def outer():\n    return lambda: 2\n")
    assert code_fingerprint(one) == code_fingerprint(moved)
    assert code_fingerprint(one) != code_fingerprint(two)


def test_version_auto_recomputes_when_the_code_changes(spot: bs.Spot) -> None:
    def first(x: int) -> int:
        return x + 1

    def second(x: int) -> int:
        return x + 2

    second.__qualname__ = first.__qualname__  # the same function, edited
    assert identify(first).key != identify(second).key  # <locals>: fingerprinted anyway
    assert spot.mark(version="auto")(first)(1) == 2
    assert spot.mark(version="auto")(second)(1) == 3


SCRIPT = """
import os, sys, beautyspot as bs
spot = bs.Spot("shared", db=os.environ["DB"])

@spot.mark{options}
def run(x):
    return {body}

print(run(1))
"""


def _python(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": SRC, **env}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environment, capture_output=True, text=True
    )


def _script(folder: Path, body: str, options: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.py"
    path.write_text(SCRIPT.format(body=body, options=options))
    return path


def test_two_scripts_of_one_name_warn_that_the_code_differs(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    exp1 = _script(tmp_path / "exp1", "('exp1', x)")
    exp2 = _script(tmp_path / "exp2", "('exp2', x)")
    first = _python([str(exp1)], tmp_path, DB=db)
    assert first.stdout.strip() == "('exp1', 1)", first.stderr
    second = _python([str(exp2)], tmp_path, DB=db)
    # version= is the contract: served, but never silently
    assert "computed by different code" in second.stderr
    assert "version='auto'" in second.stderr


def test_version_auto_scripts_of_one_name_do_not_collide(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    exp1 = _script(tmp_path / "exp1", "('exp1', x)", '(version="auto")')
    exp2 = _script(tmp_path / "exp2", "('exp2', x)", '(version="auto")')
    assert _python([str(exp1)], tmp_path, DB=db).stdout.strip() == "('exp1', 1)"
    done = _python([str(exp2)], tmp_path, DB=db)
    assert done.stdout.strip() == "('exp2', 1)", done.stderr
    assert "different code" not in done.stderr


def test_same_code_does_not_warn(spot: bs.Spot) -> None:
    def make() -> Any:
        @spot.mark
        def f(x: int) -> int:
            return x

        return f

    make()(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make()(1) == 1


# -- __main__ without a file, folders and zipapps --------------------------------------------


PROGRAM = """
import os, beautyspot as bs
spot = bs.Spot("main", db=os.environ["DB"])
@spot.mark
def load(x):
    return {body}
print(load(1))
"""


def test_python_c_programs_defining_different_functions_do_not_share(tmp_path: Path) -> None:
    db = str(tmp_path / "main.db")
    one = _python(["-c", PROGRAM.format(body="'one'")], tmp_path, DB=db)
    two = _python(["-c", PROGRAM.format(body="'two'")], tmp_path, DB=db)
    assert (one.stdout.strip(), two.stdout.strip()) == ("one", "two"), two.stderr
    again = _python(["-c", PROGRAM.format(body="'one'")], tmp_path, DB=db)
    assert again.stdout.strip() == "one"


def test_folders_and_zipapps_run_as_main_do_not_share(tmp_path: Path) -> None:
    db = str(tmp_path / "main.db")
    for name, body in (("app1", "'folder one'"), ("app2", "'folder two'")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__main__.py").write_text(PROGRAM.format(body=body))
    for name, body in (("z1.pyz", "'zip one'"), ("z2.pyz", "'zip two'")):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr("__main__.py", PROGRAM.format(body=body))
    outputs = [
        _python([name], tmp_path, DB=db).stdout.strip() for name in ("app1", "app2", "z1.pyz")
    ]
    outputs.append(_python(["z2.pyz"], tmp_path, DB=db).stdout.strip())
    assert outputs == ["folder one", "folder two", "zip one", "zip two"]


# -- spawn and forkserver workers, namespace packages, symlinks ------------------------------


WORKER_SCRIPT = """
import multiprocessing, os, sys, beautyspot as bs
spot = bs.Spot("pool", db=os.environ["DB"])

@spot.mark
def square(x):
    with open(os.environ["LOG"], "a") as log:
        log.write(f"{x}\\n")
    return x * x

if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
        in_pool = pool.map(square, [1, 2, 3])
    print(in_pool, [square(x) for x in (1, 2, 3)], square.cache_key(1))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_workers_and_their_parent_share_keys(tmp_path: Path, method: str) -> None:
    script = tmp_path / "job.py"
    script.write_text(WORKER_SCRIPT)
    log = tmp_path / "log"
    done = _python([str(script), method], tmp_path, DB=str(tmp_path / "p.db"), LOG=str(log))
    assert done.returncode == 0, done.stderr
    results, key = done.stdout.strip().rsplit(" ", 1)
    assert results == "[1, 4, 9] [1, 4, 9]"
    assert sorted(log.read_text().split()) == ["1", "2", "3"]  # nothing computed twice
    imported = _python(
        ["-c", "import job; print(job.square.cache_key(1))"],
        tmp_path,
        DB=str(tmp_path / "p.db"),
        LOG=str(log),
        PYTHONPATH=f"{SRC}{os.pathsep}{tmp_path}",
    )
    assert imported.stdout.strip() == key


KEY_PRINTER = """
import beautyspot as bs, tempfile
spot = bs.Spot("k", db=tempfile.mkdtemp() + "/k.db")
@spot.mark
def work(x):
    return x
if __name__ == "__main__":
    print(work.cache_key(1))
"""


def test_namespace_package_script_and_import_agree(tmp_path: Path) -> None:
    (tmp_path / "ns" / "inner").mkdir(parents=True)  # no __init__.py anywhere
    (tmp_path / "ns" / "inner" / "mod.py").write_text(KEY_PRINTER)
    path = f"{SRC}{os.pathsep}{tmp_path}"
    as_script = _python(["ns/inner/mod.py"], tmp_path, PYTHONPATH=path)
    imported = _python(
        ["-c", "import ns.inner.mod as m; print(m.work.cache_key(1))"], tmp_path, PYTHONPATH=path
    )
    assert as_script.stdout.strip() == imported.stdout.strip() != ""


def test_a_symlinked_script_and_its_module_agree(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(KEY_PRINTER)
    (tmp_path / "link.py").symlink_to(tmp_path / "pkg" / "mod.py")
    path = f"{SRC}{os.pathsep}{tmp_path}"
    linked = _python(["link.py"], tmp_path, PYTHONPATH=path)
    imported = _python(
        ["-c", "import pkg.mod as m; print(m.work.cache_key(1))"], tmp_path, PYTHONPATH=path
    )
    assert linked.stdout.strip() == imported.stdout.strip() != ""


# -- re-entrant calls never deadlock ----------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_function_calling_itself_with_the_same_key_does_not_deadlock(spot: bs.Spot) -> None:
    attempts: list[int] = []

    @spot.mark
    def fetch(x: int) -> str:
        attempts.append(x)
        if len(attempts) == 1:
            return fetch(x)  # refresh and retry
        return f"fresh {x}"

    assert fetch(1) == "fresh 1"
    assert fetch(1) == "fresh 1" and len(attempts) == 2


@pytest.mark.timeout(20)
def test_an_async_function_calling_itself_with_the_same_key_does_not_deadlock(
    spot: bs.Spot,
) -> None:
    attempts: list[int] = []

    @spot.mark
    async def fetch(x: int) -> str:
        attempts.append(x)
        if len(attempts) == 1:
            return await fetch(x)
        return f"fresh {x}"

    async def main() -> tuple[str, str]:
        return await fetch(1), await fetch(1)

    assert asyncio.run(main()) == ("fresh 1", "fresh 1")
    assert len(attempts) == 2


def test_other_tasks_still_wait_for_the_leader(spot: bs.Spot) -> None:
    runs: list[int] = []

    @spot.mark
    async def slow(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0.05)
        return x

    async def main() -> list[int]:
        return list(await asyncio.gather(*(slow(7) for _ in range(5))))

    assert asyncio.run(main()) == [7] * 5
    assert runs == [7]


def test_identity_of_a_module_level_function_is_its_name() -> None:
    identity = identify(raw)
    assert identity.key == identity.name == f"{__name__}.raw"
    assert len(identity.fingerprint) == 16


def test_a_marked_function_captured_by_another_is_keyed_by_its_identity(spot: bs.Spot) -> None:
    def make(k: int) -> Any:
        @spot.mark
        def inner(x: int) -> int:
            return x * k

        @spot.mark
        def outer(x: int) -> int:
            return inner(x) + 1

        return outer

    assert make(2)(10) == 21
    assert make(3)(10) == 31


def test_functions_passed_as_arguments_are_keyed_by_their_identity(spot: bs.Spot) -> None:
    @spot.mark
    def apply(fn: Any, x: int) -> int:
        return fn(x)

    assert apply(lambda x: x + 1, 1) == 2
    assert apply(lambda x: x * 10, 1) == 10
    assert apply(abs, -3) == 3


class Token:
    """Unkeyable by its state (it holds a lock); registered, it is keyed by its encoder."""

    def __init__(self, text: str) -> None:
        import threading

        self.text, self.lock = text, threading.Lock()


def test_a_registered_type_can_be_passed_as_an_argument(spot: bs.Spot) -> None:
    spot.register_type(Token, 7, encoder=lambda t: t.text, decoder=Token)

    @spot.mark
    def shout(token: Token) -> str:
        return token.text.upper()

    assert shout(Token("a")) == "A"
    assert shout(Token("b")) == "B"
    assert shout.is_cached(Token("a"))


class Weights:
    def __init__(self, k: int) -> None:
        self.k = k

    def apply(self, x: int) -> int:
        return x * self.k


# Keys of function identities that do not depend on the Python version (no code fingerprint in
# them), pinned: a change here turns every stored result of such functions into a miss.
PINNED_IDENTITIES = [
    (raw, "tests.test_identity.raw"),
    (Weights(2).apply, "tests.test_identity.Weights.apply#a641cb2f14eabf8c775abed826cd4f97"),
    (Base.make, "tests.test_identity.Base.make#0bef1ce8f7f20e95d9d419ad993dceee"),
]


@pytest.mark.parametrize(("func", "key"), PINNED_IDENTITIES, ids=["plain", "method", "classmethod"])
def test_pinned_identity_keys(func: Any, key: str) -> None:
    assert identify(func).key == key
