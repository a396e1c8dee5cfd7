import pytest
import torch

from model import GPT, ModelConfig
from model.decoder import CHUNK
from model.generation import generate
from tests.conftest import DEVICES

CFG = ModelConfig(block_size=12, n_layer=2, n_head=2, n_embd=32)


def tokens(model, idx, n, use_cache):
    return torch.cat(list(generate(model, idx, n, temperature=0.0, use_cache=use_cache)), dim=1)


POSITIONALS = ["sinusoidal", "learned", "rope"]     # added to the tokens (two ways), or turning q and k in the cache


@pytest.mark.parametrize("positional", POSITIONALS)
@pytest.mark.parametrize("prompt_len", [1, 5, 12])
def test_kv_cache_gives_the_same_greedy_tokens_as_full_recompute(prompt_len, positional):
    """30 new tokens with a 12-token context: the cached path must also cross the context limit correctly."""
    torch.manual_seed(prompt_len)
    model = GPT(ModelConfig(**{**CFG.__dict__, "positional": positional}), vocab_size=17).eval()
    if positional == "learned":     # a table initialised small (N(0, 0.01²)): made as large as the sinusoidal one
        with torch.no_grad():
            model.embed.position.table.normal_()
    idx = torch.randint(0, 17, (3, prompt_len))
    assert torch.equal(tokens(model, idx, 30, use_cache=True), tokens(model, idx, 30, use_cache=False))


@pytest.mark.parametrize("positional", POSITIONALS)
def test_cached_logits_equal_full_forward(positional):
    model = GPT(ModelConfig(**{**CFG.__dict__, "positional": positional}), vocab_size=17).eval()
    idx = torch.randint(0, 17, (2, 9))
    full, _ = model(idx)
    caches = model.new_caches(2)
    prefix, _ = model(idx[:, :5], caches=caches)
    steps = [model(idx[:, t : t + 1], caches=caches, start=t)[0] for t in range(5, 9)]
    assert torch.allclose(torch.cat([prefix, *steps], dim=1), full, atol=1e-5)


@pytest.mark.parametrize("positional", POSITIONALS)
@pytest.mark.parametrize("device, compile", [("cpu", False), *[("cuda", c) for c in (False, True) if "cuda" in DEVICES]])
def test_the_fixed_shape_decode_step_equals_the_full_forward(device, compile, positional):
    """The one-token step (position as a tensor, attention over the whole cache through a mask; on a GPU captured
    once as a CUDA graph and replayed): its logits equal those of the full forward pass at every position."""
    from model.decoder import CachedDecoder
    model = GPT(ModelConfig(**{**CFG.__dict__, "positional": positional}), vocab_size=17).to(device).eval()
    idx = torch.randint(0, 17, (2, CFG.block_size), device=device)
    with torch.no_grad():
        full, _ = model(idx)
        decoder = CachedDecoder(model, 2, compile)
        logits = [decoder.fill(idx[:, :3]).clone()]
        logits += [decoder.step(idx[:, t : t + 1]).clone() for t in range(3, CFG.block_size)]  # graph output reused
    assert decoder.length == CFG.block_size and ("step" in decoder.graphs) == (device == "cuda")
    assert torch.allclose(torch.stack(logits, dim=1), full[:, 2:], atol=1e-4)


def test_seeded_sampling_reproducible_and_streams_one_token_per_step():
    model = GPT(CFG, vocab_size=17).eval()
    idx = torch.randint(0, 17, (1, 3))
    runs = [torch.cat(list(generate(model, idx, 8, 1.0, generator=torch.Generator().manual_seed(3))), 1)
            for _ in range(2)]
    assert torch.equal(*runs) and runs[0].shape == (1, 8)


def test_a_kept_decoder_is_reused_emptied_and_never_shared_by_two_generations():
    from model.decoder import kept_decoder
    model = GPT(CFG, vocab_size=17).eval()
    a, b = torch.randint(0, 17, (1, 4)), torch.randint(0, 17, (1, 6))
    expected_a, expected_b = tokens(model, a, 20, use_cache=False), tokens(model, b, 20, use_cache=False)
    with kept_decoder(model, 1, False) as first:
        pass
    with kept_decoder(model, 1, False) as again:
        assert again is first and again.length == 0
    # a generation half-way through while another starts (as two requests to a server): each has its own caches
    running = generate(model, a, 20, temperature=0.0)
    head = [next(running) for _ in range(10)]
    assert torch.equal(tokens(model, b, 20, use_cache=True), expected_b)
    assert torch.equal(torch.cat(head + list(running), dim=1), expected_a)
    model.double()                                          # new tensors: the kept decoder must not be used
    with kept_decoder(model, 1, False) as moved:
        assert moved is not first and moved.caches[0].k.dtype == torch.float64


LONG = ModelConfig(block_size=40, n_layer=2, n_head=2, n_embd=32)


def peaked_model(positional: str = "sinusoidal") -> GPT:
    """Random weights with next-token distributions far from flat (a flat one lets the noise alone decide a draw,
    so that wrong logits could still give the right tokens)."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(**{**LONG.__dict__, "positional": positional}), vocab_size=23).eval()
    with torch.no_grad():
        model.embed.token.weight.mul_(5)
    return model


@pytest.mark.parametrize("device, compile", [("cpu", False), *[("cuda", c) for c in (False, True) if "cuda" in DEVICES]])
@pytest.mark.parametrize("sampling, positional", [
    *[(s, "sinusoidal") for s in ({"temperature": 0.0}, {"temperature": 0.8}, {"temperature": 1.3, "top_p": 0.9},
                                  {"temperature": 0.8, "top_k": 5})],
    ({"temperature": 0.0}, "rope"), ({"temperature": 0.8}, "rope")])
def test_tokens_made_a_chunk_at_a_time_are_those_of_full_recompute(device, compile, sampling, positional):
    """90 new tokens after a 3-token prompt with a 40-token context: filled, then runs of CHUNK tokens picked inside
    the decoder (on a GPU one replay of the recorded steps each), single steps where a run would cross the context
    or the end, refills past the context. Greedy or seeded sampling, the tokens are those of re-running the model on
    the window each time and drawing from the same generator."""
    model = peaked_model(positional).to(device)
    idx = torch.randint(0, 23, (2, 3), device=device)

    def made(use_cache):
        generator = torch.Generator(device=device).manual_seed(5)
        return torch.cat(list(generate(model, idx, 90, generator=generator, use_cache=use_cache, compile=compile,
                                       **sampling)), dim=1)

    from model.decoder import kept_decoder
    with kept_decoder(model, 2, compile) as decoder:
        decoder.chunks = True           # the GPU's way on the CPU too (the kept decoder is the one generate uses)
    cached = made(True)
    assert cached.shape == (2, 90) and torch.equal(cached, made(False))
    with kept_decoder(model, 2, compile) as decoder:
        ways = set(decoder.graphs)
    if device == "cuda":        # recorded once for the way tokens are picked, and reused by the second generation
        expected = {"greedy"} if sampling["temperature"] == 0 else {"top-p"} if "top_p" in sampling else {"sample"}
        assert ways == {"step"} | (set() if "top_k" in sampling else expected)
    assert CHUNK < LONG.block_size - 3


@pytest.mark.parametrize("fail", [False, True])
def test_the_recorded_decode_steps_bookkeeping_with_a_stand_in_for_the_graph(monkeypatch, fail):
    """The GPU's path on the CPU, with a stand-in for recording that runs the steps again at each replay: every
    run refills the noise, the token and the position the recorded steps read, so replayed runs of CHUNK tokens
    give the tokens of full recompute. Where recording fails, a warning, and the generation goes on token by
    token without recording, with the same tokens."""
    import contextlib
    import types

    from model import decoder as decoders
    from model.decoder import kept_decoder
    model = peaked_model()
    idx = torch.randint(0, 23, (2, 3))
    with kept_decoder(model, 2, False) as decoder:
        decoder.capture = decoder.chunks = True

    recordings = []

    def record(fn):
        """Runs nothing, as a recording does; a replay runs ``fn`` into the recorded output."""
        recordings.append(fn)
        if fail and len(recordings) == 1:           # the first recording, of a run of CHUNK tokens
            raise RuntimeError("operation not permitted when stream is capturing")
        if fn == decoder.one_step:                  # its output: logits, which a replay writes into one tensor
            out = torch.empty(2, model.vocab_size)
            return types.SimpleNamespace(replay=lambda: out.copy_(fn())), out
        return types.SimpleNamespace(replay=fn), decoder.tokens

    monkeypatch.setattr(decoders, "record", record)
    monkeypatch.setattr(decoders, "side_stream", lambda device: contextlib.nullcontext())

    def made(use_cache):
        generator = torch.Generator().manual_seed(5)
        return torch.cat(list(generate(model, idx, 90, 0.8, generator=generator, use_cache=use_cache)), dim=1)

    with contextlib.ExitStack() as checks:
        if fail:
            checks.enter_context(pytest.warns(UserWarning, match="recording decode steps as a CUDA graph failed"))
        cached = made(True)
    assert torch.equal(cached, made(False))
    assert decoder.chunks == decoder.capture == (not fail)
    assert set(decoder.graphs) == (set() if fail else {"sample", "step"})


@pytest.mark.skipif("cuda" not in DEVICES, reason="needs a GPU")
def test_a_failed_recording_of_decode_steps_on_cuda_leaves_sampling_working():
    """A read-back while recording breaks the recording of the decode steps: a warning, then token by token, and
    sampling from the default CUDA generator (no generator given) still works and draws what recompute draws."""
    from model.decoder import kept_decoder
    model = peaked_model().to("cuda")
    idx = torch.randint(0, 23, (2, 3), device="cuda")
    with kept_decoder(model, 2, False) as decoder:
        decode = decoder.decode

        def reading_back(*args):
            logits = decode(*args)
            if torch.cuda.is_current_stream_capturing():
                logits.sum().item()                     # not allowed while recording
            return logits
        decoder.decode = reading_back

    def made(use_cache):
        torch.manual_seed(5)                            # the default generators, CUDA's among them
        return torch.cat(list(generate(model, idx, 40, 0.8, use_cache=use_cache)), dim=1)

    with pytest.warns(UserWarning, match="recording decode steps as a CUDA graph failed"):
        cached = made(True)
    assert torch.equal(cached, made(False)) and not decoder.capture and not decoder.graphs
