"""The console's own YAML: broker, credentials, signing key, officers file, listen address.

Strict like the gate's config tree (unknown keys are errors) so a typo never silently
turns a security setting off.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gate.config import rebase, validation_error
from gate.yamlfile import ConfigError, parse_mapping, read_text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TlsConfig(Strict):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


class BrokerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str = "console"
    password_file: Path | None = Field(
        None,
        description="file holding the console's broker password; none on a TLS listener "
        "that takes the account from the client certificate (the shipped broker's)",
    )
    client_id: str = "autogate-console"
    tls: TlsConfig | None = None


class SigningConfig(Strict):
    key_file: Path = Field(description="Ed25519 private key (PEM, PKCS#8) that signs commands")
    key_id: str = Field("console-1", pattern=r"^[A-Za-z0-9._-]{1,64}$")


class ListenConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For names the client; from any "
        "other peer the header is ignored (e.g. [127.0.0.1/32] for a local nginx)",
    )
    request_timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=300,
        description="a request (head and body) must arrive whole this soon after its "
        "connection opens or the previous response ends; else the connection is closed",
    )


class SessionConfig(Strict):
    secret_file: Path = Field(description="random secret that signs session cookies")
    max_age_s: int = Field(8 * 3600, ge=60, description="an officer's shift")
    secure_cookie: bool = Field(True, description="only false behind no TLS in a lab")
    login_attempts: int = Field(
        5, ge=1, description="failures per (name, address) and window before slowing down"
    )
    login_window_s: int = Field(300, ge=1)
    login_max_delay_s: float = Field(60.0, gt=0, description="the slow-down's ceiling")
    login_alarm_at: int | None = Field(
        None,
        ge=1,
        description="failures of one name from anywhere that alarm supervisors "
        "(default 3 x login_attempts)",
    )


class ConsoleConfig(Strict):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    gates: list[str] = Field(default_factory=list, description="gates shown before they speak")
    broker: BrokerConfig
    signing: SigningConfig
    officers_file: Path
    audit_file: Path
    audit_signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PEM) that signs a checkpoint of the audit journal "
        "after every record (`autogate mqtt keygen` makes one); unset: chain only",
    )
    audit_checkpoints_file: Path | None = Field(
        None, description="where the signed checkpoints go (default AUDIT.checkpoints.jsonl)"
    )
    image_key_file: Path | None = Field(
        None,
        description="X25519 private key (PEM) that opens the gates' sealed referral photos "
        "(`autogate console image-key FILE` makes one and prints the public half for the "
        "gates' devices.bus.image_key); without it no photo is shown",
    )
    session: SessionConfig
    listen: ListenConfig = ListenConfig()


class ConsoleConfigError(ValueError):
    pass


def parse_console_config(
    text: str, base: Path | None = None, path: str | Path = "<console config>"
) -> ConsoleConfig:
    """Validate console YAML; ``base``: the folder relative paths are relative to."""
    try:  # the gate's shared safe loader: every problem is one line naming the field
        data = parse_mapping(text, path)
        cfg = ConsoleConfig.model_validate(data)
    except ConfigError as exc:
        raise ConsoleConfigError(str(exc)) from None
    except ValidationError as exc:
        raise ConsoleConfigError(str(validation_error(path, exc))) from None
    return cfg if base is None else _rebased(cfg, base)


def _rebased(cfg: ConsoleConfig, base: Path) -> ConsoleConfig:
    """Every relative path in ``cfg`` made relative to ``base`` (the file's folder)."""

    def walk(model: BaseModel) -> BaseModel:
        update = {}
        for name in type(model).model_fields:
            value = getattr(model, name)
            update[name] = walk(value) if isinstance(value, BaseModel) else rebase(value, base)
        return model.model_copy(update=update)

    return walk(cfg)  # type: ignore[return-value]


def load_console_config(path: str | Path) -> ConsoleConfig:
    """Read, validate and rebase the console's config file; errors are one line."""
    try:
        text = read_text(path)
    except ConfigError as exc:
        raise ConsoleConfigError(str(exc)) from None
    return parse_console_config(text, base=Path(path).absolute().parent, path=path)
