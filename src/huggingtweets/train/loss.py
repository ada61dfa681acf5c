"""The training loss without the whole logits tensor (`model.loss_chunk`).

A causal LM's loss needs logits of shape (tokens x vocabulary). For GPT-2 that is 50k columns; for
Gemma 3 it is 262,144: one batch of 8 x 128 tokens makes 1.07 GB of fp32 logits, and the model's
own loss keeps that tensor, its log-softmax and its gradient alive at once, more than LoRA's
weights and activations together. Here the output layer and the cross-entropy run over chunks of
tokens, and each chunk's gradients (of the hidden states, and of the output weights when they
train) are taken right away, so only one chunk's logits exist at a time and nothing is recomputed
in the backward pass. The loss is the model's own (mean token cross-entropy of the next tokens),
to float rounding. Hand-written because the libraries that fuse this (Liger's
FusedLinearCrossEntropy, Apple's cut-cross-entropy) are Triton kernels: GPUs only.
"""

import torch


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropy(hidden @ weight.T, targets) over rows, chunk by chunk; the gradients
    are computed in the forward pass and only scaled in the backward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int):
        with torch.autocast(hidden.device.type, enabled=False):
            return _LinearCrossEntropy._run(ctx, hidden, weight, targets, chunk)

    @staticmethod
    def _run(ctx, hidden, weight, targets, chunk):
        grad_h = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for s in range(0, hidden.size(0), chunk):  # in the weights' dtype, also under autocast
            h, t = hidden[s:s + chunk].to(weight.dtype), targets[s:s + chunk]
            logits = (h @ weight.T).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if grad_h is None and grad_w is None:
                continue
            g = logits.sub_(lse[:, None]).exp_()      # softmax, in the logits' own memory
            g[torch.arange(t.numel(), device=t.device), t] -= 1.0   # d(sum of losses)/d(logits)
            g = g.to(weight.dtype)
            if grad_h is not None:
                grad_h[s:s + chunk] = g @ weight
            if grad_w is not None:
                grad_w.addmm_(g.T, h)
        ctx.save_for_backward(grad_h, grad_w)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return (None if grad_h is None else grad_h * grad_out.to(grad_h.dtype),
                None if grad_w is None else grad_w * grad_out.to(grad_w.dtype), None, None)


def chunked_lm_loss(model, input_ids: torch.Tensor, labels: torch.Tensor, chunk: int) -> torch.Tensor:
    """Mean next-token cross-entropy of `model` (a transformers causal LM, or peft's wrapper of
    one) on `input_ids` against `labels`, as `model(input_ids, labels=labels).loss` computes it,
    with the output layer applied `chunk` tokens at a time."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    if getattr(head, "bias", None) is not None or getattr(base.config, "final_logit_softcapping", None):
        raise ValueError(f"model.loss_chunk: {type(base).__name__}'s output layer has a bias or a "
                         "logit soft-cap, which the chunked loss leaves out: set model.loss_chunk=0")
    hidden = base.get_decoder()(input_ids=input_ids).last_hidden_state[:, :-1]
    targets = labels[:, 1:].reshape(-1)
    total = _LinearCrossEntropy.apply(hidden.reshape(-1, hidden.size(-1)), head.weight, targets,
                                      int(chunk))
    return total / targets.numel()
