"""Runtime configuration: environment variables (``TUTELA_*``) over an optional YAML file.

Why pydantic-settings: one typed model documents every knob, validates it at start-up and
masks secrets when printed (``tutela config show``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tutela.errors import ConfigError


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``TUTELA_CONFIG`` (or passed to :meth:`Settings.load`)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is not None:
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"configuration file {path} must hold a mapping")
            self._data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Every setting, with its default. Environment: ``TUTELA_<NAME>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="TUTELA_", extra="forbid")

    data_dir: Path = Field(Path("tutela-data"), description="Where the embedded store lives")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/tutela.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    policy_file: Path | None = Field(None, description="Policy YAML; default: the bundled one")
    max_prompt_chars: int = Field(4000, ge=1, le=100_000)
    max_body_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="HTTP request limit")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    rate_limit_per_minute: int = Field(6000, ge=0, description="Per API key; 0 = unlimited")
    check_threads: int = Field(
        1,
        ge=1,
        le=16,
        description="Threads per worker that run the queued prompt checks in batches "
        "(api/batcher.py); more threads make smaller batches. Scale with workers instead",
    )
    check_linger_ms: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Under load (the last batch held more than one check), how long a new "
        "batch waits for more checks while fewer than 4 are queued, so the batch's fixed cost "
        "(begin, commit, PostgreSQL round trips) is shared by more; a lone request at light "
        "load never waits. Default 2 on SQLite, 0 on PostgreSQL (which gives up the core "
        "instead: check_yields). 0 = never",
    )
    check_yields: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Under load (the last batch held more than one check), how many times at "
        "most a new batch gives up the core (os.sched_yield) while fewer than 8 checks are "
        "queued, so the event loops take in more before it starts; unlike check_linger_ms it "
        "never leaves the core idle. Default 16 on PostgreSQL, 0 on SQLite. 0 = never",
    )
    account_cache_size: int = Field(
        10_000,
        ge=0,
        le=10_000_000,
        description="PostgreSQL: account rows a worker remembers between batches of checks, "
        "so a batch of known accounts skips reading them; their versions are confirmed "
        "before each commit (accounts/cache.py). 0 = read every batch's accounts",
    )
    log_prompts: bool = Field(False, description="Include prompt text in logs (off: privacy)")
    log_level: str = "INFO"
    # --- images (issue 4; docs/image-guard.md) ---
    image_max_bytes: int = Field(20_000_000, ge=1024, description="Largest image accepted")
    image_max_pixels: int = Field(
        40_000_000, ge=1, description="Largest image in pixels (checked before decoding)"
    )
    image_detectors: list[Literal["nudenet", "age"]] = Field(
        ["nudenet", "age"], description="Built-in image detectors, run in this order"
    )
    image_detector_timeout_s: float = Field(
        10.0, gt=0, description="Budget for all detectors on one image; an overrun fails closed"
    )
    image_classifier_url: str | None = Field(
        None, description="External classifier (contract: docs/image-guard.md); off unless set"
    )
    image_classifier_key: SecretStr | None = None
    image_classifier_timeout_s: float = Field(5.0, gt=0)
    onnx_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime threads per model")
    evidence_key: SecretStr | None = Field(
        None, description="Base64 AES-256 key for the evidence vault (generated if unset)"
    )
    # --- evidence and reports (issue 7; docs/evidence.md) ---
    audit_checkpoint_every: int = Field(
        256, ge=1, description="Sign an audit-log checkpoint every N entries"
    )
    audit_signing_key: Path | None = Field(
        None, description="Ed25519 PEM key for checkpoints (default: in data_dir)"
    )
    evidence_hold_days: int = Field(365, ge=1, description="Hold for reported evidence (days)")
    evidence_hold_days_unreported: int = Field(
        90, ge=1, description="Hold for evidence not (yet) reported (days)"
    )
    evidence_hold_days_by_jurisdiction: dict[str, int] = Field(
        default_factory=dict, description="Reported-evidence hold per jurisdiction, e.g. {US: 365}"
    )
    report_platform_name: str = Field("Tutela", description="Platform name in reports")
    c2pa_cert: Path | None = Field(
        None, description="PEM chain (leaf first) for C2PA signing (default: data_dir/c2pa)"
    )
    c2pa_key: Path | None = Field(None, description="ES256 PEM private key for c2pa_cert")
    c2pa_trust_anchors: Path | None = Field(
        None, description="PEM roots a trace trusts for C2PA manifests (default: the dev root)"
    )
    watermark_seed: SecretStr | None = Field(
        None, description="Secret that chooses the watermark pattern (set one in production)"
    )
    ncmec_url: str | None = Field(
        None, description="CyberTipline API base URL; NCMEC reporting is off unless set"
    )
    ncmec_username: str | None = None
    ncmec_password: SecretStr | None = None
    ncmec_reporter: dict[str, str] = Field(
        default_factory=dict,
        description="Reporting person: first_name, last_name, email (required by NCMEC), phone",
    )
    dsa_api_url: str | None = Field(
        None, description="DSA Transparency Database base URL; submission is off unless set"
    )
    dsa_api_token: SecretStr | None = None
    dsa_territorial_scope: list[str] = Field(
        default_factory=list, description="EEA country codes for statements; empty = all EEA"
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tutela.db').resolve()}"

    @property
    def effective_check_linger_ms(self) -> float:
        """``check_linger_ms``, or its default for the database: 2 ms on SQLite (1 worker: 2
        and 4 ms even); none on PostgreSQL, whose batches gather company by giving up the
        core instead (:attr:`effective_check_yields`; docs/service.md)."""
        if self.check_linger_ms is not None:
            return self.check_linger_ms
        return 0.0 if self._postgres else 2.0

    @property
    def effective_check_yields(self) -> int:
        """``check_yields``, or its default for the database: 16 on PostgreSQL, where a batch
        costs two or three round trips and two workers share the core (measured interleaved
        against a 4 ms linger: ratio 0.459 -> 0.518 and 0.470 -> 0.485, server CPU per
        request 741 -> 705 µs; docs/service.md), none on SQLite (not measured there)."""
        if self.check_yields is not None:
            return self.check_yields
        return 16 if self._postgres else 0

    @property
    def _postgres(self) -> bool:
        return self.effective_database_url.startswith("postgresql")

    @classmethod
    def load(cls, config_file: Path | str | None = None, **overrides: Any) -> Settings:
        """Build settings from ``config_file`` (or ``$TUTELA_CONFIG``), env and overrides."""
        path_str = config_file or os.environ.get("TUTELA_CONFIG")
        path = Path(path_str) if path_str else None

        class _Loaded(cls):  # type: ignore[valid-type,misc]
            @classmethod
            def settings_customise_sources(
                klass,
                settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
            ) -> tuple[PydanticBaseSettingsSource, ...]:
                return (init_settings, env_settings, _YamlSource(settings_cls, path))

        try:
            loaded = _Loaded(**overrides)
        except ValidationError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc
        return cls.model_validate(loaded.model_dump())

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by ``***``."""
        out = self.model_dump(mode="json")
        out["database_url"] = _mask_url(self.effective_database_url)
        out["check_linger_ms"] = self.effective_check_linger_ms
        out["check_yields"] = self.effective_check_yields
        for name, value in self:
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else None
        return out


def _mask_url(url: str) -> str:
    """Hide the password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown redacted entirely
        return "***"
