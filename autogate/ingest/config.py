"""The ingest service's config file (YAML): broker, database, document key, workers."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from gate.config import ConfigError, MqttTLSConfig, Strict
from gate.yamlfile import load_mapping

TOPIC = "autogate/v1/+/+/event/#"


class IngestBrokerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = Field(
        None, description="{index} is the worker's index: one account (and session) each"
    )
    password_file: Path | None = None
    tls: MqttTLSConfig | None = Field(
        None, description="{index} in cert_file and key_file: a certificate per worker"
    )
    share_group: str = Field("ingest", pattern=r"^[A-Za-z0-9_-]+$")
    client_id_prefix: str = Field("ingest", pattern=r"^[A-Za-z0-9_-]+$")
    session_expiry_s: int = Field(7 * 86400, ge=60, description="queue kept for a dead worker")

    @model_validator(mode="after")
    def _certificate_per_account(self) -> IngestBrokerConfig:
        """A TLS listener that takes the account from the certificate's CN (ours) would
        make every worker the one account of a shared certificate, whatever username
        each sends: an account per worker needs a certificate per worker."""
        tls = self.tls
        per_worker = self.username is not None and "{index}" in self.username
        if (
            per_worker
            and tls is not None
            and tls.cert_file is not None
            and not ("{index}" in str(tls.cert_file) and "{index}" in str(tls.key_file))
        ):
            raise ValueError(
                "username holds {index}: so must tls.cert_file and tls.key_file"
                " (the broker takes the account from the certificate)"
            )
        return self


class EntryServiceTLS(Strict):
    """HTTPS with client certificates: the service says whether a traveller is in the
    country, so it answers only gates that prove who they are (the site PKI's)."""

    cert_file: Path = Field(description="the service's certificate (PEM)")
    key_file: Path = Field(description="its private key (PEM)")
    client_ca_file: Path = Field(description="CA bundle that signed the gates' certificates")


class EntryServiceConfig(Strict):
    tls: EntryServiceTLS | None = Field(
        None, description="required unless the service listens on loopback behind a proxy"
    )


class IngestConfig(Strict):
    database: str = Field(description="sqlite:///PATH (embedded default) or postgresql://...")
    query_database: str | None = Field(
        None, description="url of the read-only login (autogate_reader) for queries"
    )
    document_key_file: Path = Field(
        description="the national key of the document-number hash (same as the gates')"
    )
    broker: IngestBrokerConfig = IngestBrokerConfig()
    workers: int = Field(2, ge=1, le=64)
    batch_max: int = Field(500, ge=1, le=10_000, description="events per transaction")
    batch_wait_s: float = Field(0.05, gt=0, le=5, description="longest wait to fill a batch")
    write_retries: int = Field(
        5, ge=1, le=1000, description="failed writes of a batch (database answering) before "
        "it is written event by event and what still fails is quarantined"
    )  # fmt: skip
    retry_wait_s: float = Field(0.2, gt=0, le=60, description="first wait between retries")
    serve: EntryServiceConfig = Field(
        EntryServiceConfig(), description="`ingest serve`, the entry service of departure gates"
    )
    refusals_retention_days: float = Field(
        30, gt=0, le=366, description="rejects and quarantine rows older than this are "
        "deleted (hourly, by the workers): they describe a gate's fault, and the few that "
        "keep bytes for replay may hold a traveller's names"
    )  # fmt: skip
    quarantine_dir: Path = Field(
        Path("/var/lib/autogate/ingest-quarantine"),
        description="poison events go here when even the quarantine table refuses them",
    )

    @property
    def subscription(self) -> str:
        return f"$share/{self.broker.share_group}/{TOPIC}"


def load_ingest_config(path: str | Path) -> IngestConfig:
    """Parse and validate; any problem is a ``ConfigError`` naming the file and field."""
    data = load_mapping(path)  # bounded: size, depth, aliases (gate/yamlfile.py)
    try:
        return IngestConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None


def read_secret(path: Path) -> bytes:
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not value:
        raise ConfigError(f"{path}: empty")
    return value
