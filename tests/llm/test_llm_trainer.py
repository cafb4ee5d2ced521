"""HAMTrainer: HAM around the optimizer the Hugging Face Trainer builds."""
from fnmatch import fnmatch

import pytest
import torch

transformers = pytest.importorskip("transformers")

from pyg_ham.llm import HAMArguments, llm_ham_selector, unwrap_optimizer  # noqa: E402
from pyg_ham.optim import HAM, ham_param_groups  # noqa: E402

PROJ = "*_proj.weight"
ALPHA, BETA, LR = 50.0, 0.5, 1e-2


def one_step(make_trainer, model_dir, batch, ham_args, **kwargs):
    trainer = make_trainer(model_dir, batch, ham_args, **kwargs)
    trainer.train()
    return trainer, {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def changed(a, b):
    return {n for n in a if not torch.equal(a[n], b[n])}


@pytest.mark.parametrize("optim", ["adamw_torch", "adamw_torch_fused", "sgd"])
def test_lora_one_step_differs_exactly_in_lora_matrices(optim, tiny_llama, blocks, make_trainer):
    batch = blocks(tiny_llama)
    ham = HAMArguments(alpha=ALPHA, beta=BETA)
    trainer, with_ham = one_step(make_trainer, tiny_llama, batch, ham, optim=optim)
    _, without = one_step(make_trainer, tiny_llama, batch, HAMArguments(enabled=False), optim=optim)
    lora = {n for n in with_ham if fnmatch(n, "*.lora_[AB].*")}
    assert len(lora) == 2 * 2 * 2  # 2 layers x (q_proj, v_proj) x (A, B)
    assert changed(with_ham, without) == lora
    assert set(trainer.ham_selected) == lora


@pytest.mark.parametrize("embeddings,head", [(False, False), (True, True)])
def test_full_finetuning_differs_exactly_in_selected_matrices(embeddings, head, tiny_llama, blocks, make_trainer):
    batch = blocks(tiny_llama)
    ham = HAMArguments(alpha=ALPHA, beta=BETA, include_embeddings=embeddings, include_lm_head=head)
    _, with_ham = one_step(make_trainer, tiny_llama, batch, ham, lora_r=0, weight_decay=0.1)
    _, without = one_step(make_trainer, tiny_llama, batch, HAMArguments(enabled=False), lora_r=0, weight_decay=0.1)
    expected = {n for n in with_ham if fnmatch(n, PROJ)}
    if embeddings:
        expected.add("model.embed_tokens.weight")
    if head:
        expected.add("lm_head.weight")
    assert changed(with_ham, without) == expected  # norms never; embeddings/head only when asked


def test_one_step_matches_the_formula_with_clipped_gradient(tiny_llama, blocks, make_trainer):
    """w = w_base * exp(-lr (alpha sign(w_base) g + beta)), g the clipped gradient of the batch."""
    batch, max_norm = blocks(tiny_llama), 0.05
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama), local_files_only=True)
    model(input_ids=batch, labels=batch).loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    assert total > 2 * max_norm  # clipping is active
    scale = max_norm / (total + 1e-6)
    kwargs = dict(lora_r=0, max_grad_norm=max_norm)
    _, base = one_step(make_trainer, tiny_llama, batch, HAMArguments(enabled=False), **kwargs)
    _, ham = one_step(make_trainer, tiny_llama, batch, HAMArguments(alpha=ALPHA, beta=BETA), **kwargs)
    for name, w in base.items():
        if fnmatch(name, PROJ):
            expected = w * torch.exp(-LR * (ALPHA * torch.sign(w) * grads[name] * scale + BETA))
            torch.testing.assert_close(ham[name], expected, rtol=2e-5, atol=1e-7)
            assert not torch.allclose(ham[name], w)
        else:
            assert torch.equal(ham[name], w), name


def test_scheduler_drives_the_split_groups(tiny_llama, blocks, make_trainer):
    trainer = make_trainer(tiny_llama, blocks(tiny_llama, n=4), HAMArguments(), lora_r=0, max_steps=3,
                           lr_scheduler_type="linear", warmup_steps=1, weight_decay=0.1)
    trainer.train()
    inner = unwrap_optimizer(trainer.optimizer)
    assert not isinstance(inner, HAM)  # the Trainer's own AdamW, HAM attached as a hook
    assert unwrap_optimizer(trainer.lr_scheduler.optimizer) is inner
    assert trainer.lr_scheduler.optimizer.param_groups is inner.param_groups
    flags = sorted((g["ham"], g["weight_decay"]) for g in inner.param_groups)
    assert flags == [(False, 0.0), (False, 0.1), (True, 0.1)]  # norms: no decay; embed/head: decay, no HAM
    last = trainer.lr_scheduler.get_last_lr()
    assert len(last) == len(inner.param_groups)
    assert [g["lr"] for g in inner.param_groups] == last
    assert last[0] == pytest.approx(0.0)  # linear decay reached 0 after the last of 3 steps


def test_gradient_accumulation_uses_the_accumulated_gradient(tiny_llama, blocks, make_trainer):
    batch = blocks(tiny_llama)
    ham = HAMArguments(alpha=ALPHA, beta=BETA)
    _, full = one_step(make_trainer, tiny_llama, batch, ham, lora_r=0, optim="sgd")
    _, accum = one_step(make_trainer, tiny_llama, batch, ham, lora_r=0, optim="sgd",
                        per_device_train_batch_size=len(batch) // 2, gradient_accumulation_steps=2)
    for name in full:
        torch.testing.assert_close(accum[name], full[name], rtol=1e-5, atol=1e-7)


def test_hook_equals_wrapper_and_own_optimizers(tiny_llama, blocks, make_trainer):
    """HAM attached to the Trainer's optimizer == a HAM optimizer passed in; a plain optimizer
    passed in gets HAM attached with its groups' own ``ham`` keys."""
    batch = blocks(tiny_llama)
    _, hooked = one_step(make_trainer, tiny_llama, batch, HAMArguments(alpha=ALPHA, beta=BETA), lora_r=0)

    def own(wrap):
        model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama), local_files_only=True)
        groups = ham_param_groups(model, select=llm_ham_selector(model))
        base = torch.optim.AdamW(groups, lr=LR, weight_decay=0.0)
        opt = HAM(base, alpha=ALPHA, beta=BETA) if wrap else base
        trainer = make_trainer(tiny_llama, batch, HAMArguments(alpha=ALPHA, beta=BETA), lora_r=0,
                               optimizers=(opt, None), model=model)
        trainer.train()
        return trainer, {n: p.detach().clone() for n, p in model.named_parameters()}

    for wrap in (True, False):
        trainer, weights = own(wrap)
        handle = getattr(unwrap_optimizer(trainer.optimizer), "_pyg_ham_handle", None)
        assert (handle is None) == wrap  # a HAM instance is used as it is; a plain one gets the hook
        for name in hooked:
            torch.testing.assert_close(weights[name], hooked[name], rtol=1e-6, atol=1e-8)


def test_bf16_autocast_on_cpu(tiny_llama, blocks, make_trainer):
    batch = blocks(tiny_llama, n=4)
    _, with_ham = one_step(make_trainer, tiny_llama, batch, HAMArguments(alpha=ALPHA, beta=BETA), bf16=True)
    _, without = one_step(make_trainer, tiny_llama, batch, HAMArguments(enabled=False), bf16=True)
    assert changed(with_ham, without) == {n for n in with_ham if fnmatch(n, "*.lora_[AB].*")}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Trainer's fp16 path (GradScaler) needs a CUDA GPU")
def test_fp16_with_gradient_scaler_on_gpu(tiny_llama, blocks, make_trainer):
    batch = blocks(tiny_llama, n=4)
    kwargs = dict(fp16=True, use_cpu=False)
    _, with_ham = one_step(make_trainer, tiny_llama, batch, HAMArguments(alpha=ALPHA, beta=BETA), **kwargs)
    _, without = one_step(make_trainer, tiny_llama, batch, HAMArguments(enabled=False), **kwargs)
    lora = {n for n in with_ham if fnmatch(n, "*.lora_[AB].*")}
    # a step the scaler skips (overflow) is skipped by HAM too; otherwise HAM changes the LoRA matrices only
    assert changed(with_ham, without) in (lora, set())
    assert all(torch.isfinite(w).all() for w in with_ham.values())
