"""The run's configuration: one typed, JSON-serialisable object (LangGraph's runtime context; Studio shows it).

Secrets are never stored here: the context is written to the run folder so that `resume` rebuilds it exactly;
only the *name* of the API-key variable travels.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Literal

from kernelagent.errors import UsageError
from kernelagent.llm.client import LLMSettings

Device = Literal["auto", "cuda", "cpu"]
Precision = Literal["spec", "bf16", "fp16"]
Executor = Literal["local", "ray"]
# Seeds run concurrently: thousands would mean thousands of requests and threads at once, and no better kernel.
MAX_SEEDS = 64


@dataclass(kw_only=True)
class RunContext:
    """How a run behaves. CLI options > environment > defaults."""

    model: str = field(
        default_factory=lambda: os.environ.get("KERNELAGENT_MODEL", "gpt-5"),
        metadata={"description": "Chat model name at the endpoint (env KERNELAGENT_MODEL)."},
    )
    base_url: str | None = field(
        default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or None,
        metadata={"description": "OpenAI-compatible endpoint, e.g. a vLLM or Ollama server (env OPENAI_BASE_URL)."},
    )
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"description": "Variable holding the API key."})
    reasoning_effort: str | None = field(default=None, metadata={"description": "For reasoning models."})
    temperature: float | None = field(default=None, metadata={"description": "Sampling temperature."})
    request_timeout_s: float = field(default=600.0, metadata={"description": "Per LLM request."})
    max_retries: int = field(default=3, metadata={"description": "LLM request retries, with backoff."})
    num_seeds: int = field(default=4, metadata={"description": "Independent kernel attempts run in parallel."})
    rounds_per_seed: int = field(default=8, metadata={"description": "Verify/refine rounds per seed."})
    stop_on_first_pass: bool = field(
        default=True, metadata={"description": "Stop refining other seeds once one passes (else collect all)."}
    )
    device: Device = field(default="auto", metadata={"description": "auto: cuda when available, else cpu."})
    verify_timeout_s: float = field(
        default=300.0, metadata={"description": "Wall-clock limit for one candidate's verification."}
    )
    input_draws: int = field(default=3, metadata={"description": "Independent random input draws per check."})
    sizes: dict[str, int] = field(
        default_factory=dict,
        metadata={"description": "Overrides of the reference's module-level size constants (e.g. for CPU runs)."},
    )
    precision: Precision = field(
        default="spec", metadata={"description": "spec: the reference's dtypes; bf16/fp16: ask for lower precision."}
    )
    rtol: float | None = field(default=None, metadata={"description": "Override the per-dtype relative tolerance."})
    atol: float | None = field(default=None, metadata={"description": "Override the per-dtype absolute tolerance."})
    allow_tf32: bool = field(
        default=False, metadata={"description": "Accept TF32 matmuls for float32 problems (looser tolerance)."}
    )
    test_attempts: int = field(default=3, metadata={"description": "LLM-written test generations before giving up."})
    runs_dir: str = field(default="runs", metadata={"description": "Where run folders and checkpoints live."})
    warm_workers: bool = field(
        default=True, metadata={"description": "Verify in warm forked workers (False: a cold subprocess each time)."}
    )
    autotune: bool = field(default=True, metadata={"description": "Sweep the winner's tile/launch parameters (GPU)."})
    optimise_rounds: int = field(
        default=3, metadata={"description": "LLM optimisation rounds on the fastest verified kernel (GPU; 0: off)."}
    )
    optimise_patience: int = field(
        default=2, metadata={"description": "Stop optimising after this many rounds without a gain."}
    )
    target_roofline: float = field(
        default=0.9, metadata={"description": "Stop optimising once the kernel reaches this fraction of roofline."}
    )
    checkpoint_url: str | None = field(
        default_factory=lambda: os.environ.get("KERNELAGENT_CHECKPOINT_URL") or None,
        metadata={"description": "postgresql://... for a PostgreSQL saver; unset: runs_dir/checkpoints.sqlite "
                                 "(env KERNELAGENT_CHECKPOINT_URL). Its password is never written to run.json."},
    )
    max_tokens: int | None = field(
        default=None,
        metadata={"description": "Stop (exit 5, resumable) before an LLM call would pass this many tokens."},
    )
    max_cost_usd: float | None = field(
        default=None,
        metadata={"description": "Stop (exit 5, resumable) before an LLM call would pass this cost (USD)."},
    )
    max_wall_s: float | None = field(
        default=None, metadata={"description": "Stop (exit 5, resumable) once the run has used this many seconds."}
    )
    price_in_per_m: float = field(
        default_factory=lambda: float(os.environ.get("KERNELAGENT_PRICE_IN") or 0),
        metadata={"description": "USD per 1M input tokens (env KERNELAGENT_PRICE_IN); 0 with 0 out: cost unknown."},
    )
    price_out_per_m: float = field(
        default_factory=lambda: float(os.environ.get("KERNELAGENT_PRICE_OUT") or 0),
        metadata={"description": "USD per 1M output tokens (env KERNELAGENT_PRICE_OUT)."},
    )
    executor: Executor = field(
        default="local", metadata={"description": "Where verification runs: local (in this process) or ray."}
    )
    ray_address: str | None = field(
        default=None, metadata={"description": "For executor ray: auto, ray://host:port, or local (start one here)."}
    )
    gpu_count: int | None = field(
        default=None,
        metadata={"description": "Use only the first N visible GPUs (default: every one; env KERNELAGENT_GPU_COUNT)."},
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        checks = [
            (self.num_seeds >= 1, "--seeds must be at least 1"),
            (self.num_seeds <= MAX_SEEDS, f"--seeds must be at most {MAX_SEEDS} (each seed is a concurrent LLM "
                                          f"request and verification): for more attempts, raise --rounds or use bench"),
            (self.rounds_per_seed >= 1, "--rounds must be at least 1"),
            (self.verify_timeout_s > 0, "--timeout must be positive"),
            (self.request_timeout_s > 0, "--request-timeout must be positive"),
            (self.input_draws >= 1, "--draws must be at least 1"),
            (self.max_retries >= 0, "--max-retries must be 0 or more"),
            (self.optimise_rounds >= 0, "--optimise-rounds must be 0 or more"),
            (0 < self.target_roofline <= 1, "--target-roofline must be in (0, 1]"),
            (self.device in ("auto", "cuda", "cpu"), "--device must be auto, cuda or cpu"),
            (self.precision in ("spec", "bf16", "fp16"), "--precision must be spec, bf16 or fp16"),
            (all(isinstance(v, int) and v > 0 for v in self.sizes.values()), "--size values must be positive ints"),
            (self.max_tokens is None or self.max_tokens > 0, "--max-tokens must be positive"),
            (self.max_cost_usd is None or self.max_cost_usd > 0, "--max-cost must be positive"),
            (self.max_wall_s is None or self.max_wall_s > 0, "--max-wall must be positive"),
            (self.price_in_per_m >= 0 and self.price_out_per_m >= 0, "--price-in/--price-out must be 0 or more"),
            (self.max_cost_usd is None or self.price_in_per_m + self.price_out_per_m > 0,
             "--max-cost needs prices: set --price-in/--price-out (USD per 1M tokens)"),
            (self.executor in ("local", "ray"), "--executor must be local or ray"),
            (self.gpu_count is None or self.gpu_count >= 1, "--gpus must be at least 1"),
            (self.checkpoint_url is None or self.checkpoint_url.startswith(("postgresql://", "postgres://")),
             "--checkpoint-url must be a postgresql://... connection string"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def llm_settings(self) -> LLMSettings:
        return LLMSettings(
            model=self.model,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            reasoning_effort=self.reasoning_effort,
            temperature=self.temperature,
            request_timeout_s=self.request_timeout_s,
            max_retries=self.max_retries,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunContext:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def context_of(runtime_context: RunContext | dict | None) -> RunContext:
    """Studio and the API server pass the context as JSON; the CLI passes the dataclass."""
    if isinstance(runtime_context, RunContext):
        return runtime_context
    return RunContext.from_dict(runtime_context or {})
