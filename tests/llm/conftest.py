"""Fixtures for the LLM adapter tests: a tiny random Llama and GPT-2, saved offline with a
tokenizer trained on the test's own text. (Without the ``llm`` extra the fixtures skip.)"""
import random

import pytest


def _hf():
    for name in ("peft", "tokenizers"):
        pytest.importorskip(name)
    return pytest.importorskip("transformers")

SUBJECTS = ["the cat", "a dog", "the bird", "my friend", "the teacher", "a child"]
VERBS = ["sees", "likes", "follows", "hears", "finds", "helps"]
OBJECTS = ["the ball", "a tree", "the house", "the river", "a book", "the garden"]


def corpus(sentences: int = 600, seed: int = 0) -> str:
    """Simple, learnable English-like text (the loss of a tiny model falls fast on it)."""
    rng = random.Random(seed)
    lines = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} ." for _ in range(sentences)]
    return "\n".join(lines) + "\n"


def save_tokenizer(text: str, directory):
    transformers = _hf()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                                eos_token="</s>", model_max_length=64)
    fast.save_pretrained(str(directory))
    return fast


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("llm_data") / "corpus.txt"
    path.write_text(corpus())
    return path


def _build(directory, arch: str, vocab_size: int):
    transformers = _hf()
    transformers.set_seed(0)
    if arch == "llama":
        config = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=64, tie_word_embeddings=False,
                                          bos_token_id=1, eos_token_id=2, pad_token_id=None)
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                         bos_token_id=1, eos_token_id=2)
        model = transformers.GPT2LMHeadModel(config)
    model.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, text_file):
    directory = tmp_path_factory.mktemp("tiny_llama")
    tok = save_tokenizer(text_file.read_text(), directory)
    return _build(directory, "llama", len(tok))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory, text_file):
    directory = tmp_path_factory.mktemp("tiny_gpt2")
    tok = save_tokenizer(text_file.read_text(), directory)
    return _build(directory, "gpt2", len(tok))


@pytest.fixture(scope="session")
def blocks(text_file):
    """``blocks(model_dir, n, block_size=32)``: the first ``n`` token blocks of the corpus."""
    transformers = _hf()
    from pyg_ham.llm import tokenize_blocks

    def make(model_dir, n=8, block_size=32):
        tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        out = tokenize_blocks(tok, text_file.read_text(), block_size)[:n]
        assert out.size(0) == n
        return out

    return make


@pytest.fixture
def make_trainer(tmp_path):
    """``make_trainer(model_dir, train_blocks, ham_args, lora_r=4, model=None, **training_args)``: a HAMTrainer
    on a freshly loaded model (same initial weights every time), one batch = all blocks."""
    transformers = _hf()
    from pyg_ham.llm import BlockDataset, HAMTrainer, apply_lora

    def make(model_dir, train_blocks, ham_args, lora_r=4, optimizers=(None, None), model=None, **kwargs):
        if model is None:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
        if lora_r:
            model = apply_lora(model, lora_r)
        settings = dict(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", save_strategy="no",
                        per_device_train_batch_size=len(train_blocks), max_steps=1, learning_rate=1e-2,
                        optim="adamw_torch", lr_scheduler_type="constant", max_grad_norm=0.0,
                        disable_tqdm=True, logging_steps=1000, seed=0)
        settings.update(kwargs)
        return HAMTrainer(model=model, args=transformers.TrainingArguments(**settings),
                          train_dataset=BlockDataset(train_blocks), optimizers=optimizers,
                          data_collator=transformers.default_data_collator, ham_args=ham_args)

    return make


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def all_weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture
def weights():
    return all_weights
