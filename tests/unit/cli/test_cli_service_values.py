"""Docker's flag value syntaxes (``cli.flagtypes``) on their own: ports, mounts, secrets,
networks, sizes, CPUs, durations, ``--since`` and env files, read as docker 28.2.2 reads
them; and ``--flag=false`` read as pflag reads it."""

from __future__ import annotations

import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swarmlite.api import FileRef, Mount, NetworkAttachment, PortConfig
from swarmlite.cli import flagtypes as types
from swarmlite.cli.specflags import DockerCommand

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("80", [PortConfig(target=80)]),
        ("8080:80", [PortConfig(target=80, published=8080)]),
        (":8080:80", [PortConfig(target=80, published=8080)]),
        ("53:53/UDP", [PortConfig(target=53, published=53, protocol="udp")]),
        ("80-81", [PortConfig(target=80), PortConfig(target=81)]),
        ("8080-8081:80-81", [PortConfig(target=80, published=8080),
                             PortConfig(target=81, published=8081)]),
        ("8080-8081:80", [PortConfig(target=80, published=8080),
                          PortConfig(target=80, published=8081)]),
        ("target=80,published=8080,protocol=udp,mode=host",
         [PortConfig(target=80, published=8080, protocol="udp", mode="host")]),
        ("TARGET=80", [PortConfig(target=80)]),
    ],
)  # fmt: skip
def test_ports(text: str, ports: list[PortConfig]) -> None:
    assert types.parse_ports(text) == ports


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("8080-8082:80-81", "invalid ranges specified for container and host Ports"),
        ("80/icmp", "invalid proto: icmp"),
        ("x:80", "invalid host port (x)"),
        ("99999", "invalid container port (99999)"),
        ("target=80,name=web", "invalid field key: name"),
        ("target=80,mode=routed", "invalid publish mode value (routed)"),
        ("target=80,published", "invalid field: published"),
    ],
)
def test_bad_ports(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        types.parse_ports(text)


def test_mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    volume = "src=data,dst=/data,ro=false,volume-driver=local,consistency=cached"
    bind = "type=bind,source=./conf,destination=/conf,bind-propagation=RSLAVE"

    assert types.parse_mount(volume) == Mount(source="data", target="/data")
    assert types.parse_mount(bind) == Mount(
        type="bind", source=str(tmp_path / "conf"), target="/conf", bind_propagation="rslave"
    )
    assert types.parse_mount("type=tmpfs,target=/t,tmpfs-size=1GiB,readonly=1") == Mount(
        type="tmpfs", target="/t", tmpfs_size=1 << 30, read_only=True
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("target=/x,shared", "invalid field 'shared' must be a key=value pair"),
        ("target=/x,size=1", "unexpected key 'size' in 'size=1'"),
        ("type=tmpfs,target=/x,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
        ("type=volume,target=/x,bind-propagation=shared",
         "cannot mix 'bind-*' options with mount type 'volume'"),
        ("type=bind,target=/x,bind-recursive=disabled",
         "mount option bind-recursive is not supported by swarmlite"),
    ],
)  # fmt: skip
def test_bad_mounts(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("*", r"\*")):
        types.parse_mount(text)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("db", FileRef(name="db", target="db")),
        ("source=db,target=/run/db", FileRef(name="db", target="/run/db")),
        ("src=db,mode=0400", FileRef(name="db", target="db", mode=0o400)),
        ("src=db,mode=0o440", FileRef(name="db", target="db", mode=0o440)),
        ("src=db,mode=292", FileRef(name="db", target="db", mode=0o444)),
        ("src=db,uid=1000,gid=1000", FileRef(name="db", target="db", uid="1000", gid="1000")),
    ],
)
def test_secrets_and_configs(text: str, ref: FileRef) -> None:
    assert types.parse_file_ref(text, "secret") == ref


def test_bad_secrets_and_configs() -> None:
    with pytest.raises(ValueError, match="invalid field in config request: name"):
        types.parse_file_ref("source=a,name=b", "config")
    with pytest.raises(ValueError, match="invalid mode specified: rw"):
        types.parse_file_ref("source=a,mode=rw", "secret")


def test_networks() -> None:
    assert types.parse_network("shop") == NetworkAttachment(target="shop")
    assert types.parse_network("name=shop, alias=db,alias=pg") == NetworkAttachment(
        target="shop", aliases=["db", "pg"]
    )
    with pytest.raises(ValueError, match="network name/id is not specified"):
        types.parse_network("alias=db")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("1.5GiB", 3 << 29),
        ("64 kb", 64 << 10),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert types.parse_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "nanos"), [("0.5", 500_000_000), ("2", 2_000_000_000), ("1/4", 250_000_000)]
)
def test_cpus(text: str, nanos: int) -> None:
    assert types.NanoCpus().convert(text, None, None) == nanos


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("1m30s", 90.0), ("250ms", 0.25)])
def test_go_durations(text: str, seconds: float) -> None:
    assert types.GoDuration().convert(text, None, None) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", NOW - 600),
        ("1h30m", NOW - 5400),
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T22:13:20.123456789Z", NOW + 0.123456),
        ("2023-11-14T23:13:20+01:00", NOW),
        ("1700000000.5", NOW + 0.5),
        ("0", 0.0),
    ],
)
def test_since(text: str, seconds: float) -> None:
    assert types.parse_since(text, NOW) == pytest.approx(seconds)


def test_since_without_a_zone_is_local_time() -> None:
    local = datetime.datetime(2023, 11, 14, 22, 13).timestamp()

    assert types.parse_since("2023-11-14T22:13", NOW) == local


def test_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env"
    path.write_text("\ufeffA=1\n\n# comment\n   B = x\nC\nD\n", encoding="utf-8")
    monkeypatch.setenv("C", "from shell")
    monkeypatch.delenv("D", raising=False)

    with pytest.raises(ValueError, match="variable 'B ' contains whitespaces"):
        types.read_env_file(str(path))
    path.write_text("A=1\n\n# comment\n  B= x\nC\nD\n", encoding="utf-8")
    assert types.read_env_file(str(path)) == ["A=1", "B= x", "C=from shell"]


@click.command(cls=DockerCommand, context_settings={"allow_interspersed_args": False})
@click.option("-t", "--tty/--no-tty", default=None)
@click.option("-d", "--detach", is_flag=True)
@click.option("-e", "--env", multiple=True)
@click.argument("args", nargs=-1)
def shown(tty: bool | None, detach: bool, env: tuple[str, ...], args: tuple[str, ...]) -> None:
    click.echo(f"{tty} {detach} {list(env)} {list(args)}")


@pytest.mark.parametrize(
    ("args", "seen"),
    [
        (["--tty=false"], "False False [] []"),
        (["--tty=1", "--detach=false"], "True False [] []"),
        (["-dt"], "True True [] []"),
        (["-e", "--tty=false"], "None False ['--tty=false'] []"),  # a value, not a flag
        (["-de", "--tty=false"], "None True ['--tty=false'] []"),
        (["-eX=1", "--tty=false"], "False False ['X=1'] []"),
        (["image", "--tty=false"], "None False [] ['image', '--tty=false']"),
        (["--", "--tty=false"], "None False [] ['--tty=false']"),
    ],
)
def test_bool_flags_take_attached_values_as_pflag(args: list[str], seen: str) -> None:
    result = CliRunner().invoke(shown, args)

    assert result.exit_code == 0, result.output
    assert result.output == seen + "\n"


def test_a_bool_flag_refuses_a_word_that_is_no_boolean() -> None:
    result = CliRunner().invoke(shown, ["--detach=maybe"])

    assert result.exit_code == 2
    assert "Option '--detach' does not take a value" in result.output
