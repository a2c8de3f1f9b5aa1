"""Tiny FunASR model folders with random weights, laid out as the downloaded ones are (not a test module).

No FunASR weights can be downloaded here, so the adapters are tested on folders that have the same
files as ModelScope's (configuration.json, config.yaml, model.pt, tokens.json, am.mvn and, for
SenseVoice, a sentencepiece model) and the same model classes, scaled down and randomly
initialised. They exercise the real FunASR code paths (streaming cache, chunking, look-back, the
SenseVoice language/ITN queries) but their text is meaningless.
"""

import json
from pathlib import Path

import yaml

N_MELS, LFR_M, LFR_N = 80, 7, 6
FEATS = N_MELS * LFR_M
# A few hundred common characters, so the random decoders have a real vocabulary to emit.
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
    "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
    "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
    "必战先回则任取据处理"
)
PARAFORMER_CONFIG = {
    "model": "ParaformerStreaming",
    "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True, "predictor_weight": 1.0,
                   "predictor_bias": 1, "sampling_ratio": 0.75},
    "encoder": "SANMEncoderChunkOpt",
    "encoder_conf": {"output_size": 64, "attention_heads": 4, "linear_units": 128, "num_blocks": 2,
                     "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
                     "input_layer": "pe_online", "pos_enc_class": "SinusoidalPositionEncoder",
                     "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
                     "selfattention_layer_type": "sanm", "chunk_size": [12, 15], "stride": [8, 10],
                     "pad_left": [0, 0], "encoder_att_look_back_factor": [4, 4],
                     "decoder_att_look_back_factor": [1, 1]},
    "decoder": "ParaformerSANMDecoder",
    "decoder_conf": {"attention_heads": 4, "linear_units": 128, "num_blocks": 2, "dropout_rate": 0.1,
                     "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1,
                     "src_attention_dropout_rate": 0.1, "att_layer_num": 2, "kernel_size": 11, "sanm_shfit": 5},
    "predictor": "CifPredictorV2",
    # threshold below the real 1.0 so the random model fires tokens and the decoder path runs
    "predictor_conf": {"idim": 64, "threshold": 0.3, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
    "frontend": "WavFrontendOnline",
    "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": N_MELS, "frame_length": 25, "frame_shift": 10,
                      "lfr_m": LFR_M, "lfr_n": LFR_N, "dither": 0.0},
    "tokenizer": "CharTokenizer",
    "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
}  # fmt: skip


def _am_mvn(dims: int) -> str:
    zeros, ones = " ".join(["0"] * dims), " ".join(["1"] * dims)
    return (
        f"<Nnet>\n<Splice> {dims} {dims}\n[ 0 ]\n<AddShift> {dims} {dims}\n<LearnRateCoef> 0 [ {zeros} ]\n"
        f"<Rescale> {dims} {dims}\n<LearnRateCoef> 0 [ {ones} ]\n</Nnet>\n"
    )


def _save_random_weights(folder: Path) -> None:
    """Build the model once from the folder (random init, fixed seed) and save it as model.pt."""
    import torch
    from funasr import AutoModel

    model = AutoModel(model=str(folder), disable_update=True, disable_pbar=True, disable_log=True, device="cpu")
    torch.save(model.model.state_dict(), folder / "model.pt")
    meta = json.loads((folder / "configuration.json").read_text())
    meta["file_path_metas"]["init_param"] = "model.pt"
    (folder / "configuration.json").write_text(json.dumps(meta, indent=1))


def make_paraformer_streaming(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(PARAFORMER_CONFIG, allow_unicode=True))
    tokens = ["<blank>", "<s>", "</s>", *dict.fromkeys(CHARS), "<unk>"]
    (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False))
    (folder / "am.mvn").write_text(_am_mvn(N_MELS * LFR_M))
    (folder / "configuration.json").write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "task": "auto-speech-recognition",
                "model": {"type": "funasr"},
                "file_path_metas": {
                    "config": "config.yaml",
                    "tokenizer_conf": {"token_list": "tokens.json"},
                    "frontend_conf": {"cmvn_file": "am.mvn"},
                },
            }
        )
    )
    _save_random_weights(folder)
    return folder


SENSEVOICE_TAGS = ["<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>", "<|NEUTRAL|>", "<|HAPPY|>",
                   "<|Speech|>", "<|BGM|>", "<|withitn|>", "<|woitn|>"]  # fmt: skip
SENSEVOICE_BPE = "chn_jpn_yue_eng_ko_spectok.bpe.model"
SENSEVOICE_CONFIG = {
    "model": "SenseVoiceSmall",
    "model_conf": {"lsm_weight": 0.1, "length_normalized_loss": True},
    "encoder": "SenseVoiceEncoderSmall",
    "encoder_conf": {"output_size": 64, "attention_heads": 4, "linear_units": 128, "num_blocks": 2, "tp_blocks": 1,
                     "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
                     "input_layer": "pe", "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True,
                     "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"},
    "frontend": "WavFrontend",
    "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": N_MELS, "frame_length": 25, "frame_shift": 10,
                      "lfr_m": LFR_M, "lfr_n": LFR_N, "dither": 0.0},
    "tokenizer": "SentencepiecesTokenizer",
    "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
}  # fmt: skip


def make_sensevoice_small(folder: Path) -> Path:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text(
        "\n".join([CHARS[i : i + 20] for i in range(0, len(CHARS), 20)] + ["hello world ten of clubs"] * 5)
    )
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / SENSEVOICE_BPE.removesuffix(".model")),
        vocab_size=300,
        model_type="bpe",
        character_coverage=1.0,
        user_defined_symbols=SENSEVOICE_TAGS,
        minloglevel=2,
    )
    corpus.unlink()
    (folder / (SENSEVOICE_BPE.removesuffix(".model") + ".vocab")).unlink(missing_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(SENSEVOICE_CONFIG, allow_unicode=True))
    (folder / "am.mvn").write_text(_am_mvn(N_MELS * LFR_M))
    (folder / "configuration.json").write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "task": "auto-speech-recognition",
                "model": {"type": "funasr"},
                "file_path_metas": {
                    "config": "config.yaml",
                    "tokenizer_conf": {"bpemodel": SENSEVOICE_BPE},
                    "frontend_conf": {"cmvn_file": "am.mvn"},
                },
            }
        )
    )
    _save_random_weights(folder)
    return folder
