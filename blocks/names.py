"""What a block id may be. Ids become module paths (``inception3a.branch2.0``): each dotted part is an attribute
of a torch module, in the compiled network and in exported code alike, so one set of rules serves the canvas,
project files and the inside of user-defined groups."""
from __future__ import annotations

import keyword
import re

PART = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)\Z")  # \Z: "x\n" is not a name

# Names a part cannot take, because each part becomes an attribute of a torch module: the public attributes of
# nn.Module (a block called "double" or "training" would replace them), those of the compiled and exported
# networks, and (a rule) every name with a leading underscore (nn.Module's private state, dunders). A test keeps
# this list equal to what the installed torch has.
TORCH_ATTRIBUTES = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches
    eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
    modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
    register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
    code output_ids loss_weights input_shapes aux_logits
""".split())


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text with lone surrogates (which UTF-8 cannot encode: a label or a group name with one could never be
    saved) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if isinstance(text, str) else text


def torch_name_clash(part: str) -> bool:
    """True when a dotted part of a block id would clash with a torch module's own attribute."""
    return part.startswith("_") or part in TORCH_ATTRIBUTES


def free_part(part: str) -> str:
    """A name like ``part`` that clashes with nothing torch modules have (``double`` -> ``double_``)."""
    base = part.lstrip("_") or "block"
    while torch_name_clash(base) or keyword.iskeyword(base):
        base += "_"
    return base


def part_problem(part: str) -> str | None:
    """Why ``part`` cannot be one dotted part of an id, or None when it can."""
    if not PART.match(part) or keyword.iskeyword(part):
        return ("each dotted part must be a name (letters, digits, _; not a Python keyword) or a number"
                + (f"; try {free_part(part)!r}" if keyword.iskeyword(part) else ""))
    if torch_name_clash(part):
        return (f"{part!r} is the name of a torch module's own attribute (it would replace nn.Module.{part}); "
                f"try {free_part(part)!r}")
    return None


def renamed_for_torch(block_id: str) -> str:
    """``block_id`` with every part that clashes with a torch attribute or is a keyword replaced by
    :func:`free_part`'s (how files from before these rules load)."""
    return ".".join(free_part(p) if PART.match(p) and (torch_name_clash(p) or keyword.iskeyword(p)) else p
                    for p in block_id.split("."))
