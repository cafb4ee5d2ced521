"""Which tensors of a language model get the hyperbolic step (no Trainer involved)."""
from fnmatch import fnmatch

import pytest
import torch

transformers = pytest.importorskip("transformers")

from pyg_ham.llm import apply_lora, build_llm_optimizer, llm_ham_selector, split_param_groups  # noqa: E402
from pyg_ham.optim import HAM  # noqa: E402

LLAMA_MATRICES = ["*.q_proj.weight", "*.k_proj.weight", "*.v_proj.weight", "*.o_proj.weight",
                  "*.gate_proj.weight", "*.up_proj.weight", "*.down_proj.weight"]


def load(directory):
    return transformers.AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True)


def chosen(model, **kwargs):
    pred = llm_ham_selector(model, **kwargs)
    return {n for n, p in model.named_parameters() if p.requires_grad and pred(n, p)}


def matching(model, patterns):
    return {n for n, _ in model.named_parameters() if any(fnmatch(n, p) for p in patterns)}


def test_full_llama_selects_projection_matrices_only(tiny_llama):
    model = load(tiny_llama)
    expected = matching(model, LLAMA_MATRICES)
    assert len(expected) == 2 * 7
    assert chosen(model) == expected
    assert chosen(model, include_embeddings=True) == expected | {"model.embed_tokens.weight"}
    assert chosen(model, include_lm_head=True) == expected | {"lm_head.weight"}
    assert chosen(model, exclude="*.mlp.*") == matching(model, LLAMA_MATRICES[:4])
    assert chosen(model, select="*norm*") == matching(model, ["*norm*"])  # an explicit select wins


def test_gpt2_tied_head_and_position_embeddings(tiny_gpt2):
    model = load(tiny_gpt2)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    expected = matching(model, ["*.c_attn.weight", "*.c_proj.weight", "*.c_fc.weight"])  # Conv1D, 2-D
    assert len(expected) == 2 * 4
    assert chosen(model) == expected
    assert chosen(model, include_embeddings=True) == expected | {"transformer.wpe.weight"}  # tied wte: needs both
    assert chosen(model, include_embeddings=True, include_lm_head=True) == expected | {
        "transformer.wpe.weight", "transformer.wte.weight"}


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2"])
def test_lora_selects_exactly_the_lora_matrices(arch, request):
    model = apply_lora(load(request.getfixturevalue(arch)), r=4)
    lora = {n for n, p in model.named_parameters() if "lora_A" in n or "lora_B" in n}
    assert lora and all(p.requires_grad == (n in lora) for n, p in model.named_parameters())
    assert chosen(model) == lora
    assert chosen(model, include_embeddings=True, include_lm_head=True) == lora  # frozen: never touched


def test_split_param_groups_keeps_every_other_key():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if p.ndim == 2], "weight_decay": 0.1},
              {"params": [p for n, p in named if p.ndim == 1], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=0.01, betas=(0.8, 0.9))
    selected = split_param_groups(opt, named, lambda n, p: n == "0.weight" or n == "1.bias")
    assert selected == ["0.weight", "1.bias"]
    summary = [(g["ham"], g["weight_decay"], g["betas"], len(g["params"])) for g in opt.param_groups]
    assert summary == [(True, 0.1, (0.8, 0.9), 1), (False, 0.1, (0.8, 0.9), 1),
                       (True, 0.0, (0.8, 0.9), 1), (False, 0.0, (0.8, 0.9), 3)]
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    with pytest.raises(RuntimeError, match="already stepped"):
        split_param_groups(opt, named, lambda n, p: True)


def test_plain_pytorch_path_steps_only_lora(tiny_llama, blocks):
    batch = blocks(tiny_llama, n=4)
    after = {}
    for ham in (False, True):
        torch.manual_seed(0)
        model = apply_lora(load(tiny_llama), r=4)
        opt = build_llm_optimizer(model, lr=1e-2, ham=ham, alpha=50.0, beta=0.5)
        assert isinstance(opt, HAM) == ham
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        after[ham] = {n: p.detach().clone() for n, p in model.named_parameters()}
    differ = {n for n in after[True] if not torch.equal(after[True][n], after[False][n])}
    assert differ == {n for n in after[True] if "lora_A" in n or "lora_B" in n}
