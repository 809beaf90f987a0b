"""Word-level inputs on byte-level BPE vocabularies (RoBERTa, GPT-2): every word gets its leading-space form.

The tokenizer is a tiny byte-level BPE trained in code (milliseconds), saved to a folder and loaded
the way the task CLIs load any encoder's tokenizer.
"""
from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from models.backbone import load_tokenizer
from tasks.ner.formats import Sentence
from tasks.ner.features import encode

TEXT = ["john smith lives in paris", "he lives in new york city", "smith said it"]


def byte_level_bpe(folder, sequence: bool = False) -> str:
    """A RoBERTa-like byte-level BPE without a prefix space (as RoBERTa ships), optionally inside a Sequence."""
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(), byte_level]) if sequence \
        else byte_level
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([" " + t for t in TEXT] * 20, trainer)  # words as they occur mid-sentence
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                      pad_token="<pad>", unk_token="<unk>")
    wrapped.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("sequence", [False, True])
def test_pre_split_words_get_their_mid_sentence_form(tmp_path, sequence):
    path = byte_level_bpe(tmp_path, sequence)
    words = ["john", "lives", "in", "paris"]
    plain = load_tokenizer(path)
    # the bug this guards against: without a prefix space every word is tokenized as a text start
    assert plain(words, is_split_into_words=True, add_special_tokens=False).tokens() != \
        plain(" john lives in paris", add_special_tokens=False).tokens()
    for_words = load_tokenizer(path, pre_split_words=True)
    assert for_words(words, is_split_into_words=True, add_special_tokens=False).tokens() == \
        plain(" john lives in paris", add_special_tokens=False).tokens() == ["Ġjohn", "Ġlives", "Ġin", "Ġparis"]


def test_ner_features_on_a_byte_level_bpe_label_whole_words(tmp_path):
    tokenizer = load_tokenizer(byte_level_bpe(tmp_path), pre_split_words=True)
    sentence = Sentence(["john", "smith", "lives", "in", "paris"], ["B-PER", "I-PER", "O", "O", "B-LOC"], 1)
    labels = {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3}
    features, word_ids, stats = encode([sentence], tokenizer, labels, 32)
    tokens = tokenizer.convert_ids_to_tokens(features[0]["input_ids"])
    assert tokens == ["Ġjohn", "Ġsmith", "Ġlives", "Ġin", "Ġparis"]  # one piece per known word, as in running text
    assert features[0]["labels"] == [1, 2, 0, 0, 3] and stats.words_without_subtokens == 0


def test_wordpiece_is_unchanged_by_the_word_setting(tiny_model_dir):
    plain, for_words = load_tokenizer(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir), pre_split_words=True)
    words = ["john", "smith", "lives", "in", "paris"]
    ids = [t(words, is_split_into_words=True)["input_ids"] for t in (plain, for_words)]
    assert ids[0] == ids[1]


def test_a_checkpoint_with_its_own_code_is_refused_without_running_it(tmp_path):
    """ChatGLM-6B's folders name their own modelling and tokenizer code (``auto_map``): it is never run (no prompt on
    stdin either), and the refusal is one line."""
    import json

    from models.backbone import EncoderNotFound, load_tokenizer

    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "chatglm", "architectures": ["ChatGLMModel"],
        "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig",
                     "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration"}}))
    (tmp_path / "modeling_chatglm.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(EncoderNotFound, match="ChatGLM-6B"):
        load_tokenizer(str(tmp_path))
