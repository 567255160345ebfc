"""File I/O: images, atomic writes, video/GIF/frames, strokes JSON and SVG (NumPy + Pillow, no JAX)."""

from paintproc_jax.io.atomic import atomic_path, staged_dir
from paintproc_jax.io.images import IMAGE_EXTENSIONS, list_images, load_image, resize_image, save_png, to_uint8
from paintproc_jax.io.strokes_json import load_program, program_from_dict, program_to_dict, save_program
from paintproc_jax.io.svg import program_to_svg, save_svg
from paintproc_jax.io.video import (
    contact_sheet,
    mp4_available,
    save_contact_sheet,
    write_frames,
    write_gif,
    write_mp4,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "atomic_path",
    "contact_sheet",
    "list_images",
    "load_image",
    "load_program",
    "mp4_available",
    "program_from_dict",
    "program_to_dict",
    "program_to_svg",
    "resize_image",
    "save_contact_sheet",
    "save_png",
    "save_program",
    "save_svg",
    "staged_dir",
    "to_uint8",
    "write_frames",
    "write_gif",
    "write_mp4",
]
