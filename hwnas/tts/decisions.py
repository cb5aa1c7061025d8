"""The TTS decisions: a FastSpeech 2-like non-autoregressive acoustic model
(phoneme embedding, encoder, duration predictor and length regulator,
decoder, mel output) as a decision graph (see :mod:`hwnas.space.decisions`).

Encoder and decoder each choose their depth, width and block type, as
LightSpeech searched FastSpeech 2's blocks: a transformer block (self-attention
with heads), a depthwise-separable convolution, a lightweight convolution
(one softmax-normalised kernel per head, shared by its channels) or a dynamic
convolution (the kernel predicted from each frame)."""

from __future__ import annotations

from hwnas.space.decisions import Context, Decision

BLOCKS = ("transformer", "sepconv", "lightconv", "dynconv")
CONV_BLOCKS = ("sepconv", "lightconv", "dynconv")
HEADED_BLOCKS = ("transformer", "lightconv", "dynconv")   # choose a number of heads


def _stack(side: str, layers: tuple[int, ...], widths: tuple[int, ...]) -> list[Decision]:
    """The decisions of one stack (``enc`` or ``dec``): same shape for both."""
    block, hidden = f"{side}_block", f"{side}_hidden"

    def headed(c: Context) -> bool:
        return c.get(block) in HEADED_BLOCKS

    def conv(c: Context) -> bool:
        return c.get(block) in CONV_BLOCKS

    word = "encoder" if side == "enc" else "decoder"
    return [
        Decision(f"{side}_layers", layers, f"{word} blocks", numeric=True),
        Decision(hidden, widths, f"{word} width", numeric=True),
        Decision(block, BLOCKS, f"{word} block: self-attention, separable, lightweight or "
                 "dynamic convolution"),
        Decision(f"{side}_heads", (1, 2, 4), f"{word} heads (attention heads, or kernels of "
                 "a lightweight/dynamic convolution)", numeric=True,
                 applies=headed, allowed=lambda v, c: c[hidden] % v == 0,
                 reads=(block, hidden),
                 rule="applies to transformer, lightconv and dynconv blocks; must divide "
                      "the width"),
        Decision(f"{side}_kernel", (1, 5, 9, 13, 17, 21, 25), f"{word} convolution kernel "
                 "(frames)", numeric=True, applies=conv, reads=(block,),
                 rule="applies only to convolution blocks"),
    ]


def default_decisions() -> list[Decision]:
    """The built-in TTS search space, in decision order."""
    return [
        *_stack("enc", (1, 2, 3, 4), (64, 128, 192, 256)),
        *_stack("dec", (1, 2, 3, 4), (64, 128, 192, 256)),
        Decision("var_hidden", (32, 64, 128, 256), "duration predictor width", numeric=True),
        Decision("var_kernel", (3, 5), "duration predictor convolution kernel", numeric=True),
    ]
