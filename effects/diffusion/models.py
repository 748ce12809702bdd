"""The diffusion model handle: one model (Riffusion or a text-to-music AudioLDM 2), loaded once, shared.

Riffusion (``riffusion/riffusion-model-v1``) is a Stable Diffusion 1.5 fine-tune with a 4-channel
UNet (DESIGN.md section 6). :func:`load_model` loads it (a hub id from the user's own cache, or a
local folder written by ``save_pretrained``) and returns a :class:`DiffusionModel`; every effect
that asks for the same model, device and dtype gets the same handle, so the weights are in memory
once. The handle builds text-to-image, img2img and inpaint pipelines from its one set of
components (``StableDiffusionInpaintPipeline(**components)``), never reloading anything.

The same handle serves text-to-music: a folder (or cached hub id) whose ``model_index.json``
names an ``AudioLDM2Pipeline`` (e.g. ``cvssp/audioldm2-music``) loads as a
:class:`~.audio_model.TextToMusicModel` (used by :class:`~.text_to_music.TextToMusic`), through
the same cache, the same offline rule and the same errors; ``kind="text2music"`` only changes
the default model and the advice in the error message.

Offline by default: the hub is contacted only when the user explicitly allows downloads
(``allow_download=True`` or ``BLENDFX_ALLOW_DOWNLOAD=1``) and ``HF_HUB_OFFLINE`` is not set. A
model that is not on disk raises :class:`~blendfx.errors.ModelNotFoundError` naming the model and
saying how to provide it.

Examples
--------
>>> model = load_model("/models/riffusion")                 # doctest: +SKIP
>>> pipe = model.pipeline("inpaint", scheduler="ddim")      # shares the loaded weights
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
from blendfx.device import resolve_device
from blendfx.errors import ModelNotFoundError, ParameterError
from diffusers import AudioLDM2Pipeline, DiffusionPipeline, StableDiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from diffusers.utils import deprecation_utils

from .audio_model import TextToMusicModel

__all__ = [
    "DEFAULT_MODEL_ID",
    "MODEL_ENV",
    "DEFAULT_TEXT_TO_MUSIC_ID",
    "TEXT_TO_MUSIC_ENV",
    "MODEL_KINDS",
    "ALLOW_DOWNLOAD_ENV",
    "SCHEDULERS",
    "GpuOptions",
    "DiffusionModel",
    "load_model",
    "clear_model_cache",
    "resolve_model_spec",
    "downloads_allowed",
]

#: The hub id of the default model.
DEFAULT_MODEL_ID = "riffusion/riffusion-model-v1"
#: Environment variable naming the default model (a folder or a hub id) when ``model`` is "".
MODEL_ENV = "BLENDFX_RIFFUSION_MODEL"
#: The hub id of the default text-to-music model (AudioLDM 2 trained on music).
DEFAULT_TEXT_TO_MUSIC_ID = "cvssp/audioldm2-music"
#: Environment variable naming the default text-to-music model when ``model`` is "".
TEXT_TO_MUSIC_ENV = "BLENDFX_TEXT_TO_MUSIC_MODEL"
#: What ``kind`` means to the loader: (default hub id, environment variable, diffusers pipeline
#: class, folder name in the advice).
MODEL_KINDS: dict[str, tuple[str, str, str, str]] = {
    "riffusion": (DEFAULT_MODEL_ID, MODEL_ENV, "StableDiffusionPipeline", "riffusion"),
    "text2music": (DEFAULT_TEXT_TO_MUSIC_ID, TEXT_TO_MUSIC_ENV, "AudioLDM2Pipeline", "audioldm2-music"),
}

#: Environment variable that allows downloads from the hub when set to 1/true/yes.
ALLOW_DOWNLOAD_ENV = "BLENDFX_ALLOW_DOWNLOAD"

#: Scheduler names effects accept, and the diffusers class each one means ("default": the
#: scheduler saved with the model).
SCHEDULERS: dict[str, str | None] = {
    "default": None,
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "lms": "LMSDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}

_PIPELINES = {
    "text2img": "StableDiffusionPipeline",
    "img2img": "StableDiffusionImg2ImgPipeline",
    "inpaint": "StableDiffusionInpaintPipeline",
}

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class GpuOptions:
    """Speed and memory options, applied only when the model runs on CUDA.

    Attributes
    ----------
    attention : {"sdpa", "default"}
        "sdpa": PyTorch's fused scaled-dot-product attention on every attention layer;
        "default": whatever diffusers picked.
    channels_last : bool
        Store UNet and VAE weights channels-last (faster convolutions on tensor cores).
    compile : bool
        ``torch.compile`` the UNet (pays off after a few calls of the same shape; the first call
        compiles for minutes).
    vae_batch : int
        Most images the VAE encodes or decodes at once (VAE slicing for big batches).
    vae_tiling : bool
        Decode in overlapping tiles (for images much larger than 512 x 512).
    fuse_qkv : bool
        Fuse the attention q/k/v projections into one matrix multiply.
    """

    attention: str = "sdpa"
    channels_last: bool = True
    compile: bool = False
    vae_batch: int = 8
    vae_tiling: bool = False
    fuse_qkv: bool = False

    def __post_init__(self) -> None:
        if self.attention not in ("sdpa", "default"):
            raise ParameterError(f"GpuOptions.attention = {self.attention!r} is not 'sdpa' or 'default'")
        if int(self.vae_batch) < 1:
            raise ParameterError(f"GpuOptions.vae_batch = {self.vae_batch} must be >= 1")


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """Whether the hub may be contacted: never under ``HF_HUB_OFFLINE``; else the argument, else
    the ``BLENDFX_ALLOW_DOWNLOAD`` environment variable (off by default)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return False
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in _TRUE


def _kind(kind: str) -> tuple[str, str, str, str]:
    if kind not in MODEL_KINDS:
        raise ParameterError(f"kind = {kind!r} is not one of {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind]


def resolve_model_spec(model: str | os.PathLike | None = "", kind: str = "riffusion") -> tuple[str, bool]:
    """Turn a model argument into ``(spec, is_folder)``.

    "" or None means ``$BLENDFX_RIFFUSION_MODEL`` if set, else :data:`DEFAULT_MODEL_ID` (for
    ``kind="text2music"``: ``$BLENDFX_TEXT_TO_MUSIC_MODEL``, else
    :data:`DEFAULT_TEXT_TO_MUSIC_ID`). An existing directory is a local folder (returned
    absolute); a string that looks like a path (absolute, ``./``, ``../``, ``~``) but does not
    exist raises :class:`ModelNotFoundError`; anything else is a hub id.
    """
    default_id, env, _, _ = _kind(kind)
    spec = str(model) if model not in (None, "") else (os.environ.get(env) or default_id)
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    if spec.startswith(("/", "./", "../", "~", "\\")) or path.is_absolute() or path.exists():
        raise ModelNotFoundError(
            f"diffusion model folder {spec!r} does not exist (or is not a folder). "
            + _how_to_provide(default_id, kind))
    return spec, False


def _how_to_provide(model_id: str, kind: str = "riffusion") -> str:
    _, env, pipeline, folder = _kind(kind)
    return (
        f"To provide it: on a machine with internet access run\n"
        f"  python -c \"from diffusers import {pipeline}; "
        f"{pipeline}.from_pretrained('{model_id}').save_pretrained('{folder}')\"\n"
        f"copy the '{folder}' folder here, then pass model='/path/to/{folder}' (or set "
        f"{env}=/path/to/{folder}). Downloading from the hub at run time is off unless "
        f"you pass allow_download=True or set {ALLOW_DOWNLOAD_ENV}=1 (and HF_HUB_OFFLINE is unset).")


def _resolve_dtype(dtype: Any, device) -> Any:
    names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16,
             "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype in (None, "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif str(dtype) in names:
        resolved = names[str(dtype)]
    else:
        raise ParameterError(f"dtype = {dtype!r} is not one of 'auto', 'fp32', 'fp16', 'bf16'")
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise ParameterError(f"dtype = {dtype!r}: diffusion models run in fp32, fp16 or bf16")
    if device.type == "cpu" and resolved == torch.float16:
        raise ParameterError("dtype = 'fp16' is not supported on the CPU; use 'fp32' or 'bf16'")
    return resolved


class DiffusionModel:
    """A loaded Stable Diffusion model (Riffusion) on one device, shared by effects.

    Build one with :func:`load_model` (cached) or :meth:`from_components`. Calls that run the
    model should hold :attr:`lock`, so two effects in two threads never interleave on one
    scheduler or one GPU.

    Attributes
    ----------
    name : str
        The hub id or absolute folder it was loaded from ("<components>" when built in memory).
    device : torch.device
    dtype : torch.dtype
    options : GpuOptions
    components : dict
        ``vae``, ``text_encoder``, ``tokenizer``, ``unet``, ``scheduler`` (plus the unused
        ``safety_checker``/``feature_extractor`` slots, None).
    """

    def __init__(self, components: dict[str, Any], *, name: str, device, dtype,
                 options: GpuOptions | None = None):
        self.name = name
        self.device = device
        self.dtype = dtype
        self.options = options or GpuOptions()
        self.lock = threading.RLock()
        self._pipelines: dict[tuple[str, str], Any] = {}
        self._prompt_cache: dict[tuple[str, str, bool], Any] = {}
        comps = dict(components)
        comps["safety_checker"] = None
        comps["feature_extractor"] = None
        for key in ("vae", "text_encoder", "unet"):
            module = comps[key]
            if module.dtype != dtype:
                module = module.to(dtype=dtype)
            module = module.to(device=device)
            module.eval()
            module.requires_grad_(False)
            comps[key] = module
        self.components = comps
        if device.type == "cuda":
            self._apply_gpu_options()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_components(cls, components: dict[str, Any], *, device: str = "auto", dtype: Any = "auto",
                        options: GpuOptions | None = None, name: str = "<components>") -> DiffusionModel:
        """A handle over components already in memory (e.g. a pipeline's ``.components``)."""

        dev = resolve_device(device)
        return cls(components, name=name, device=dev, dtype=_resolve_dtype(dtype, dev), options=options)

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike = "", **kwargs: Any) -> DiffusionModel:
        """Same as :func:`load_model` (cached)."""
        return load_model(model, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the model as a diffusers folder (safetensors) that :func:`load_model` reads.

        The folder is written next to its destination and renamed into place, so a failure
        leaves no half-written model; an existing folder is replaced.
        """

        dest = Path(folder).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            pipe = StableDiffusionPipeline(**self._plain_components(), requires_safety_checker=False)
            pipe.save_pretrained(tmp, safe_serialization=True)
            old = None
            if dest.exists():
                old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
                os.replace(dest, old)
            os.replace(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def _plain_components(self) -> dict[str, Any]:
        """Components with any ``torch.compile`` wrapper removed (for saving)."""
        comps = dict(self.components)
        for key in ("unet", "vae"):
            comps[key] = getattr(comps[key], "_orig_mod", comps[key])
        return comps

    def _apply_gpu_options(self) -> None:
        opts = self.options
        unet, vae = self.components["unet"], self.components["vae"]
        if opts.attention == "sdpa":
            unet.set_attn_processor(AttnProcessor2_0())
            vae.set_attn_processor(AttnProcessor2_0())
        if opts.fuse_qkv:
            unet.fuse_qkv_projections()
        if opts.channels_last:
            unet.to(memory_format=torch.channels_last)
            vae.to(memory_format=torch.channels_last)
        if opts.vae_tiling:
            vae.enable_tiling()
        if opts.compile:
            self.components["unet"] = torch.compile(unet)

    # -- facts about the model ----------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along each axis (8 for Stable Diffusion)."""
        return 2 ** (len(self.components["vae"].config.block_out_channels) - 1)

    @property
    def width_multiple(self) -> int:
        """Image sizes must be multiples of this many pixels (64 for Stable Diffusion)."""
        unet = self.components["unet"]
        unet = getattr(unet, "_orig_mod", unet)
        return self.vae_scale_factor * 2 ** (len(unet.config.down_block_types) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.components["vae"].config.latent_channels)

    # -- pipelines ----------------------------------------------------------------------------
    def pipeline(self, kind: str = "inpaint", scheduler: str = "default"):
        """A diffusers pipeline of ``kind`` ('text2img', 'img2img', 'inpaint') over this model's
        components, with its own scheduler instance (``scheduler``: a key of
        :data:`SCHEDULERS`). Cached: the same arguments return the same pipeline object."""

        if kind not in _PIPELINES:
            raise ParameterError(f"pipeline kind {kind!r} is not one of {', '.join(_PIPELINES)}")
        if scheduler not in SCHEDULERS:
            raise ParameterError(f"scheduler = {scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        key = (kind, scheduler)
        with self.lock:
            pipe = self._pipelines.get(key)
            if pipe is None:
                comps = dict(self.components)
                base = comps["scheduler"]
                cls_name = SCHEDULERS[scheduler]
                sched_cls = type(base) if cls_name is None else getattr(diffusers, cls_name)
                # A scheduler keeps per-call state (timesteps, step index): one per pipeline.
                comps["scheduler"] = sched_cls.from_config(base.config)
                pipe = getattr(diffusers, _PIPELINES[kind])(**comps, requires_safety_checker=False)
                pipe.set_progress_bar_config(disable=True)
                self._pipelines[key] = pipe
            return pipe

    def encode_prompt(self, prompt: str, negative_prompt: str = "", guidance: float = 7.0):
        """``(prompt_embeds, negative_embeds or None)`` for one prompt, each ``(1, 77, dim)``,
        cached per text (the text encoder runs once per prompt, not once per window)."""
        cfg = guidance > 1.0
        key = (prompt, negative_prompt if cfg else "", cfg)
        with self.lock:
            hit = self._prompt_cache.get(key)
            if hit is None:
                pipe = self.pipeline("text2img")
                pos, neg = pipe.encode_prompt(prompt, self.device, 1, cfg,
                                              negative_prompt=negative_prompt or None)
                hit = (pos, neg if cfg else None)
                if len(self._prompt_cache) > 64:
                    self._prompt_cache.clear()
                self._prompt_cache[key] = hit
            return hit

    # -- VAE ----------------------------------------------------------------------------------
    def encode(self, images):
        """Latents ``(B, 4, H/8, W/8)`` of images ``(B, 3, H, W)`` in [-1, 1] (the posterior
        mean, scaled: deterministic and the same alone or in a batch)."""

        vae = self.components["vae"]
        out = []
        with torch.inference_mode():
            for chunk in torch.split(images, self._vae_batch()):
                chunk = chunk.to(self.device, self.dtype)
                out.append(vae.encode(chunk).latent_dist.mean * vae.config.scaling_factor)
        return torch.cat(out)

    def decode(self, latents):
        """Images ``(B, 3, H, W)`` in [-1, 1] (float32) of latents from :meth:`encode`."""

        vae = self.components["vae"]
        out = []
        with torch.inference_mode():
            for chunk in torch.split(latents, self._vae_batch()):
                chunk = chunk.to(self.device, self.dtype) / vae.config.scaling_factor
                out.append(vae.decode(chunk).sample.float())
        return torch.cat(out)

    def _vae_batch(self) -> int:
        return int(self.options.vae_batch) if self.device.type == "cuda" else 4

    def __repr__(self) -> str:
        return f"DiffusionModel({self.name!r}, device={self.device}, dtype={self.dtype})"


# -- the shared cache ----------------------------------------------------------------------------
_CACHE: dict[tuple, DiffusionModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(model: str | os.PathLike = "", *, device: str = "auto", dtype: Any = "auto",
               allow_download: bool | None = None, options: GpuOptions | None = None,
               cache: bool = True, kind: str = "riffusion") -> DiffusionModel | TextToMusicModel:
    """Load a diffusion model once and return the shared handle.

    A Riffusion-style Stable Diffusion pipeline becomes a :class:`DiffusionModel`; an
    ``AudioLDM2Pipeline`` (the folder's ``model_index.json`` says which) a
    :class:`~.audio_model.TextToMusicModel`.

    Parameters
    ----------
    model : str or path
        A local diffusers folder, a hub id (looked up in the local Hugging Face cache), or ""
        for ``$BLENDFX_RIFFUSION_MODEL`` / :data:`DEFAULT_MODEL_ID`.
    device : str
        'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:N'.
    dtype : str
        'auto' (fp16 on CUDA, fp32 on the CPU), 'fp32', 'fp16' (CUDA only), 'bf16'.
    allow_download : bool, optional
        Allow contacting the hub (default: ``$BLENDFX_ALLOW_DOWNLOAD``, off); ignored under
        ``HF_HUB_OFFLINE=1``.
    options : GpuOptions, optional
        Speed/memory options for CUDA.
    cache : bool
        Return (and keep) the shared handle for the same model, device, dtype and options.
    kind : {"riffusion", "text2music"}
        Which default ``model=""`` means, and which model the error message says how to get.

    Raises
    ------
    ModelNotFoundError
        The model is not on disk (and downloads are off) or the folder is not a diffusers
        pipeline; the message names the model and says how to provide it.
    """

    dev = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    options = options or GpuOptions()
    spec, is_folder = resolve_model_spec(model, kind)
    key = (spec, str(dev), str(torch_dtype), options)
    with _CACHE_LOCK:
        if cache and key in _CACHE:
            return _CACHE[key]
        may_download = downloads_allowed(allow_download)
        if _pipeline_class(spec, is_folder, may_download, kind) == "AudioLDM2Pipeline":
            pipe = _load_pipeline(AudioLDM2Pipeline, spec, is_folder, torch_dtype, may_download, kind)
            handle = TextToMusicModel(pipe, name=spec, device=dev, dtype=torch_dtype)
        else:
            components = _load_components(spec, is_folder, torch_dtype, may_download, kind)
            handle = DiffusionModel(components, name=spec, device=dev, dtype=torch_dtype, options=options)
        if cache:
            _CACHE[key] = handle
        return handle


def clear_model_cache() -> None:
    """Forget every shared handle (their memory is freed once no effect holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _pipeline_class(spec: str, is_folder: bool, may_download: bool, kind: str) -> str | None:
    """The diffusers pipeline class a folder or cached hub model holds (None: unknown)."""
    default_id = _kind(kind)[0]
    if is_folder:
        index = Path(spec) / "model_index.json"
        if not index.is_file():
            raise ModelNotFoundError(
                f"diffusion model folder {spec!r} has no model_index.json: it is not a diffusers "
                f"pipeline folder (write one with DiffusionModel.save_pretrained or diffusers' "
                f"save_pretrained). " + _how_to_provide(default_id, kind))
        try:
            return str(json.loads(index.read_text()).get("_class_name") or "") or None
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelNotFoundError(f"diffusion model folder {spec!r}: its model_index.json cannot "
                                     f"be read ({exc})") from exc
    try:
        return str(DiffusionPipeline.load_config(spec, local_files_only=not may_download)
                   .get("_class_name") or "") or None
    except (OSError, ValueError):
        return None


def _load_pipeline(cls, spec: str, is_folder: bool, torch_dtype, may_download: bool, kind: str,
                   **kwargs: Any):
    try:
        return cls.from_pretrained(spec, **{_dtype_keyword(): torch_dtype},
                                   local_files_only=is_folder or not may_download, **kwargs)
    except (OSError, ValueError) as exc:
        where = "folder" if is_folder else "hub model"
        if not is_folder and not may_download:
            why = "downloads are off, and it is not in the local Hugging Face cache"
        else:
            why = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        raise ModelNotFoundError(
            f"diffusion {where} {spec!r} could not be loaded ({why}). "
            + _how_to_provide(_kind(kind)[0] if is_folder else spec, kind)) from exc


def _load_components(spec: str, is_folder: bool, torch_dtype, may_download: bool,
                     kind: str = "riffusion") -> dict[str, Any]:
    pipe = _load_pipeline(StableDiffusionPipeline, spec, is_folder, torch_dtype, may_download, kind,
                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return pipe.components


def _dtype_keyword() -> str:
    """diffusers renamed ``from_pretrained(torch_dtype=)`` to ``dtype=`` (the old name warns)."""
    try:
        return "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
    except ImportError:  # pragma: no cover - older diffusers
        return "torch_dtype"
