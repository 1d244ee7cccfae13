#!/usr/bin/env python3
"""make_corpus.py: (re)write the committed seed corpus of the fuzz targets, tests/fuzz/corpus/<target>/.

Each target gets valid inputs (from fixtures/ where one exists) and hostile ones, one per rule the
parser enforces. Names say what each file is. Run from anywhere: python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st(header, data=b"", pad=True, n_override=None):
    """A safetensors file: 8-byte little-endian header length, header, data."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if n_override is None else n_override
    return struct.pack("<Q", n) + h + data


def ent(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


def st_header():
    t = "st_header"
    two = {"__metadata__": {"format": "pt", "producer": "fuzz"},
           "a": ent("F32", [2], 0, 8), "b": ent("BF16", [1, 2], 8, 12)}
    data = struct.pack("<2f", 1.0, 2.0) + b"\x80\x3f\x00\x40"
    put(t, "valid_two_tensors", st(two, data))
    put(t, "valid_empty_header", st({}))
    put(t, "valid_zero_dim", st({"z": ent("F16", [0, 4], 0, 0), "u": ent("U8", [1], 0, 1)}, b"\x07"))
    put(t, "valid_scalar", st({"s": ent("I64", [], 0, 8)}, b"\x01" + b"\0" * 7))
    put(t, "valid_fp8", st({"w": ent("F8_E4M3", [2, 2], 0, 4), "w_scale": ent("F32", [1, 1], 4, 8)},
                           b"\x38\x40\xb8\x00" + struct.pack("<f", 0.5)))
    put(t, "valid_unpadded_unaligned", st({"a": ent("I64", [1], 0, 8)}, b"\x05" + b"\0" * 7, pad=False))
    put(t, "truncated_data", st(two, data[:9]))
    put(t, "truncated_header", st(two, data)[:20])
    put(t, "short_7_bytes", b"\x10\0\0\0\0\0\0")
    put(t, "header_len_huge", st(two, data, n_override=1 << 62))
    put(t, "header_len_over_cap", st(two, data, n_override=100_000_001))
    put(t, "header_len_past_file", st(two, data, n_override=4096))
    put(t, "header_len_small", st(two, data, n_override=4))
    put(t, "offsets_past_end", st({"a": ent("F32", [2], 0, 8), "b": ent("BF16", [1, 2], 8, 12),
                                   "c": ent("U8", [4], 12, 16)}, data))
    put(t, "offsets_overlap", st({"a": ent("F32", [2], 0, 8), "b": ent("BF16", [1, 2], 6, 10)}, data[:10]))
    put(t, "offsets_gap", st({"a": ent("F32", [2], 0, 8), "b": ent("BF16", [1, 2], 10, 14)}, data + b"\0\0"))
    put(t, "offsets_begin_gt_end", st({"a": ent("F32", [2], 8, 0)}, data[:8]))
    put(t, "offsets_huge", st({"a": ent("U8", [1], 2**53 - 1, 2**53)}, b"\0"))
    put(t, "offsets_over_2p53", st({"a": ent("U8", [1], 0, 2**64)}, b"\0"))
    put(t, "shape_product_overflow", st({"a": ent("F32", [2**32, 2**32, 2], 0, 0)}))
    put(t, "shape_product_overflow_itemsize", st({"a": ent("F64", [2**31, 2**31], 0, 0)}))
    put(t, "shape_overflow_then_zero", st({"a": ent("F32", [2**40, 2**40, 0], 0, 0)}))
    put(t, "shape_mismatch_bytes", st({"a": ent("F32", [3], 0, 8)}, data[:8]))
    put(t, "rank_7", st({"a": ent("U8", [1] * 7, 0, 1)}, b"\0"))
    put(t, "shape_negative", st(b'{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "shape_float", st(b'{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', b"\0"))
    put(t, "shape_exp", st(b'{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}', b"\0"))
    put(t, "shape_leading_zero", st(b'{"a":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}', b"\0"))
    put(t, "dtype_unknown", st({"a": ent("F128", [1], 0, 16)}, b"\0" * 16))
    put(t, "dtype_not_string", st(b'{"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "duplicate_tensor", st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                  b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0\0"))
    put(t, "duplicate_field", st(b'{"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "duplicate_metadata", st(b'{"__metadata__":{"k":"1"},"__metadata__":{"k":"2"}}'))
    put(t, "metadata_not_string", st(b'{"__metadata__":{"k":1}}'))
    put(t, "metadata_duplicate_key", st(b'{"__metadata__":{"k":"1","k":"2"}}'))
    put(t, "missing_field", st(b'{"a":{"dtype":"U8","shape":[1]}}', b"\0"))
    put(t, "bad_utf8", st(b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "overlong_utf8", st(b'{"\xc0\xaf":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "nul_escape_in_name", st(b'{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "control_char_in_name", st(b'{"a\x01":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"))
    put(t, "not_object", st(b"[1,2,3]"))
    put(t, "trailing_garbage", st(b'{}x      '))
    put(t, "nul_padding", st(b'{}\0\0\0\0\0\0', pad=False))
    put(t, "deep_nesting", st(b'{"__metadata__":' + b"[" * 2000 + b"]" * 2000 + b"}"))
    put(t, "entry_not_object", st(b'{"a":[1,2]}'))
    put(t, "offsets_three", st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}', b"\0"))


def st_index():
    t = "st_index"
    wm = {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "d": "sub/s3.safetensors"}
    put(t, "valid_index", json.dumps({"metadata": {"total_size": 23}, "weight_map": wm}, indent=2))
    put(t, "missing_tensor_in_map", json.dumps({"weight_map": {k: v for k, v in wm.items() if k != "c"}}))
    put(t, "tensor_in_wrong_file", json.dumps({"weight_map": dict(wm, c="s1.safetensors")}))
    put(t, "map_names_absent_tensor", json.dumps({"weight_map": dict(wm, zz="s2.safetensors")}))
    put(t, "missing_shard", json.dumps({"weight_map": dict(wm, e="s9.safetensors")}))
    put(t, "path_traversal", json.dumps({"weight_map": dict(wm, c="../s2.safetensors")}))
    put(t, "path_traversal_inner", json.dumps({"weight_map": dict(wm, c="sub/../../etc/passwd")}))
    put(t, "absolute_path", json.dumps({"weight_map": dict(wm, c="/etc/passwd")}))
    put(t, "empty_file_name", json.dumps({"weight_map": dict(wm, c="")}))
    put(t, "dir_as_shard", json.dumps({"weight_map": dict(wm, c="sub")}))
    put(t, "index_as_shard", json.dumps({"weight_map": dict(wm, c="model.safetensors.index.json")}))
    put(t, "duplicate_tensor_key", '{"weight_map":{"a":"s1.safetensors","a":"s1.safetensors",'
        '"b":"s1.safetensors","c":"s2.safetensors","d":"sub/s3.safetensors"}}')
    put(t, "value_not_string", json.dumps({"weight_map": dict(wm, c=3)}))
    put(t, "weight_map_array", json.dumps({"weight_map": ["s1.safetensors"]}))
    put(t, "no_weight_map", json.dumps({"metadata": {}}))
    put(t, "empty_weight_map", json.dumps({"weight_map": {}}))
    put(t, "not_json", "{\"weight_map\": {\"a\": ")
    put(t, "empty", "")


def config_seeds():
    hf = open(os.path.join(ROOT, "fixtures/golden/ref_tiny/hf/config.json")).read()
    put("config_hf", "valid_ref_tiny_hf", hf)
    j = json.loads(hf)
    v5 = dict(j)
    if "rope_scaling" in v5:
        v5["rope_parameters"] = dict(v5.pop("rope_scaling"), rope_theta=v5.get("rope_theta", 10000.0))
    put("config_hf", "valid_v5_rope_parameters", json.dumps(v5))
    fp8 = dict(j, quantization_config={"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                        "scale_fmt": "ue8m0", "weight_block_size": [128, 128]})
    put("config_hf", "valid_fp8", json.dumps(fp8))
    put("config_hf", "no_rope_scaling", json.dumps({k: v for k, v in j.items() if k != "rope_scaling"}))
    put("config_hf", "missing_required", json.dumps({k: v for k, v in j.items() if k != "hidden_size"}))
    put("config_hf", "hidden_size_zero", json.dumps(dict(j, hidden_size=0)))
    put("config_hf", "hidden_size_negative", json.dumps(dict(j, hidden_size=-256)))
    put("config_hf", "hidden_size_fraction", json.dumps(dict(j, hidden_size=256.5)))
    put("config_hf", "hidden_size_string", json.dumps(dict(j, hidden_size="256")))
    put("config_hf", "huge_ints", json.dumps(dict(j, num_attention_heads=9e15, v_head_dim=9e15,
                                                  num_key_value_heads=9e15)))
    put("config_hf", "block_size_huge", json.dumps(dict(fp8, quantization_config=dict(
        fp8["quantization_config"], weight_block_size=[1e300, -1e300]))))
    put("config_hf", "kv_heads_huge", json.dumps(dict(j, num_key_value_heads=1e300)))
    put("config_hf", "orig_max_pos_huge", json.dumps(dict(j, rope_scaling=dict(
        j.get("rope_scaling", {"type": "yarn", "factor": 40}), original_max_position_embeddings=1e300))))
    put("config_hf", "rope_type_unknown", json.dumps(dict(j, rope_scaling={"type": "dynamic", "factor": 2})))
    put("config_hf", "quant_method_other", json.dumps(dict(j, quantization_config={"quant_method": "gptq"})))
    put("config_hf", "topk_group_gt_groups", json.dumps(dict(j, topk_group=99)))
    put("config_hf", "not_object", "[1,2,3]")
    put("config_hf", "truncated", hf[: len(hf) // 2])
    put("config_hf", "deep_nesting", "{\"x\":" + "[" * 3000 + "]" * 3000 + "}")
    ref = open(os.path.join(ROOT, "fixtures/golden/ref_tiny/mp2/config.json")).read()
    put("config_ref", "valid_ref_tiny", ref)
    r = json.loads(ref)
    put("config_ref", "valid_fp8", json.dumps(dict(r, dtype="fp8", dim=256, inter_dim=512)))
    put("config_ref", "valid_defaults_only", "{}")
    put("config_ref", "unknown_key", json.dumps(dict(r, hidden_size=256)))
    put("config_ref", "n_dense_gt_layers", json.dumps(dict(r, n_dense_layers=9)))
    put("config_ref", "experts_not_divisible", json.dumps(dict(r, n_routed_experts=15)))
    put("config_ref", "index_head_dim_not_pow2", json.dumps(dict(r, index_head_dim=96)))
    put("config_ref", "huge_ints_overflow", json.dumps(dict(r, n_heads=9e15, v_head_dim=9e15, dtype="fp8")))
    put("config_ref", "huge_groups_overflow", json.dumps(dict(r, n_limited_groups=4e15, n_expert_groups=4e15,
                                                               n_routed_experts=8e15)))
    put("config_ref", "rope_theta_zero", json.dumps(dict(r, rope_theta=0)))
    put("config_ref", "dtype_other", json.dumps(dict(r, dtype="fp4")))
    put("config_ref", "scale_fmt_null", json.dumps(dict(r, scale_fmt=None)))
    put("config_ref", "score_func_bad", json.dumps(dict(r, score_func=3)))
    put("config_ref", "max_seq_len_string", json.dumps(dict(r, max_seq_len="64")))
    put("config_ref", "not_object", "\"bf16\"")


def budget():
    t = "budget"
    put(t, "valid_budget", json.dumps({"schema": "dsv32-parity-budget/1", "rules": [
        {"pattern": "layers.*.attn.out", "mode": "propagate", "max": {"rel_l2": 0.05, "ulp_p99": 8},
         "min": {"cosine": 0.999}, "why": "measured"},
        {"pattern": "*.indexer.topk", "min": {"recall": 0.9, "jaccard": 0.8}},
        {"pattern": "logits", "mode": "any", "max": {"kl": 1e-3}, "min": {"top1": 0.99}},
        {"pattern": "*", "mode": "local", "max": {"nan": 0}}]}, indent=1))
    put(t, "empty_rules", '{"rules": []}')
    put(t, "rules_not_array", '{"rules": {}}')
    put(t, "rule_not_object", '{"rules": [1]}')
    put(t, "pattern_too_long", json.dumps({"rules": [{"pattern": "x" * 200}]}))
    put(t, "pattern_missing", '{"rules": [{"max": {"rel_l2": 1}}]}')
    put(t, "unknown_metric", '{"rules": [{"pattern": "*", "max": {"bogus": 1}}]}')
    put(t, "metric_not_number", '{"rules": [{"pattern": "*", "max": {"rel_l2": "1"}}]}')
    put(t, "too_many_limits", json.dumps({"rules": [{"pattern": "*", "max": {m: 1 for m in [
        "max_abs", "mean_abs", "rms", "rel_l2", "ulp_max", "ulp_mean", "ulp_p99", "frac_over_tol"]},
        "min": {"cosine": 0.9}}]}))
    put(t, "mode_bad", '{"rules": [{"pattern": "*", "mode": "sideways"}]}')
    put(t, "mode_not_string", '{"rules": [{"pattern": "*", "mode": 1}]}')
    put(t, "glob_pathological", json.dumps({"rules": [{"pattern": "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
                                                       "max": {"rel_l2": 1}}]}))
    put(t, "glob_brackets", json.dumps({"rules": [{"pattern": "[[:alpha:]-[]*\\", "max": {"rel_l2": 1}}]}))
    put(t, "not_json", "{rules: []}")


def report():
    t = "report"
    dense = {"n": 1536, "n_diff": 12, "max_abs": 0.0078125, "max_abs_at": 17, "mean_abs": 1e-4,
             "rms": 2e-4, "rel_l2": 0.003, "cosine": 0.99999, "ulp_max": 2, "ulp_mean": 0.01,
             "ulp_p99": 1, "frac_over_tol": 0.0, "nan_a": 0, "nan_b": 0, "inf_a": 0, "inf_b": 0}
    taps = [
        {"name": "embed", "op": "embed", "layer": -1, "step": 0, "mode": "propagate", "kind": "dense",
         "dtype_a": "BF16", "dtype_b": "BF16", "shape": [2, 3, 256], "metrics": dense, "over_budget": False},
        {"name": "layers.0.indexer.topk", "op": "indexer.topk", "layer": 0, "step": 0, "mode": "local",
         "kind": "set", "dtype_a": "I64", "dtype_b": "I64", "shape": [2, 3, 16],
         "set": {"rows": 6, "recall": 1.0, "jaccard": 1.0, "rows_equal": 6, "rows_tie_equal": 6,
                 "first_diff_row": -1}, "over_budget": False},
        {"name": "logits", "op": "logits", "layer": -1, "step": 1, "mode": "propagate", "kind": "logits",
         "dtype_a": "F32", "dtype_b": "BF16", "shape": [2, 1024], "metrics": dict(dense, max_abs=None),
         "logits": {"rows": 2, "kl": 1e-5, "top1_agree": 1.0, "top5_overlap": 1.0},
         "noise_ratio_a": 1.2, "noise_ratio_b": 0.9, "over_budget": True, "budget_note": "kl 1e-5 > 0"}]
    rep = {"schema_version": 1, "tool": "dsv32-parity", "tool_version": "0.1.0",
           "provenance": {"seed": "0", "preset": "tiny"}, "side_a": "ref:cpu:bf16:tp=1",
           "side_b": "hf:cpu:bf16", "mode": "propagate", "verdict": "fail",
           "first_divergence": {"name": "logits", "step": 1, "mode": "propagate", "note": "kl"},
           "first_nonfinite": None, "taps": taps,
           "skipped": [{"name": "layers.0.attn.q_rope", "step": 0, "reason": "only in a"}]}
    put(t, "valid_report", json.dumps(rep, indent=1))
    put(t, "valid_minimal", '{"schema_version": 1, "taps": []}')
    put(t, "nonfinite", json.dumps(dict(rep, first_nonfinite="layers.0.attn.out")))
    put(t, "wrong_version", json.dumps(dict(rep, schema_version=2)))
    put(t, "taps_not_array", json.dumps(dict(rep, taps={})))
    put(t, "tap_no_name", json.dumps(dict(rep, taps=[dict(taps[0], name="")])))
    put(t, "tap_bad_kind", json.dumps(dict(rep, taps=[dict(taps[0], kind="sparse")])))
    put(t, "layer_null", json.dumps(dict(rep, taps=[dict(taps[0], layer=None)])))
    put(t, "layer_huge", json.dumps(dict(rep, taps=[dict(taps[0], layer=2147483647)])))
    put(t, "layer_1e300", json.dumps(dict(rep, taps=[dict(taps[0], layer=1e300, step=-1e300)])))
    put(t, "ulp_negative", json.dumps(dict(rep, taps=[dict(taps[0], metrics=dict(dense, ulp_max=-5))])))
    put(t, "provenance_array", json.dumps(dict(rep, provenance=["a", "b"])))
    put(t, "provenance_many", json.dumps(dict(rep, provenance={"k%d" % i: "v" for i in range(40)})))
    put(t, "skipped_step_null", json.dumps(dict(rep, skipped=[{"name": "x", "step": None, "reason": "r"}])))
    put(t, "shape_strings", json.dumps(dict(rep, taps=[dict(taps[0], shape=["a", None, {}, 1, 2, 3, 4])])))
    put(t, "long_strings", json.dumps(dict(rep, side_a="A" * 5000, taps=[dict(taps[0], name="n" * 500)])))
    put(t, "not_json", "{\"schema_version\": 1, \"taps\": [")


def tokens():
    t = "tokens"
    # first byte: vocabulary selector (see fuzz_tokens.c); 0 = unchecked
    put(t, "valid_row", b"\x00" + b"5,17,42")
    put(t, "valid_rows_semicolon", b"\x00" + b"1,2,3;4,5,6")
    put(t, "valid_file_form", b"\xca" + b"# prompt\n1 2 3\n4 5 6\n\n")
    put(t, "out_of_vocab", b"\x10" + b"5,17,42")
    put(t, "ragged_rows", b"\x00" + b"1,2,3;4,5")
    put(t, "too_large", b"\x00" + b"99999999999999999999999")
    put(t, "at_2p62", b"\x00" + b"4611686018427387904")
    put(t, "negative", b"\x00" + b"-1,2")
    put(t, "plus_sign", b"\x00" + b"+1,2")
    put(t, "garbage", b"\x00" + b"1,x,3")
    put(t, "empty", b"\x00")
    put(t, "only_separators", b"\x00" + b";;,,\n\n# c")
    put(t, "control_bytes", b"\x00" + b"1\x01\xff")


def tapfile():
    t = "tapfile"
    ids = struct.pack("<3q", 5, 17, 42)
    sp = struct.pack("<q", 0)
    emb = b"\x80\x3f" * 6
    hdr = {"__metadata__": {"producer": "fuzz", "world_size": "1"},
           "step0.input_ids": ent("I64", [1, 3], 0, 24), "step0.start_pos": ent("I64", [1], 24, 32),
           "step0.embed": ent("BF16", [1, 3, 2], 32, 44),
           "step1.input_ids": ent("I64", [1, 1], 44, 52), "step1.position_ids": ent("I64", [1, 1], 52, 60)}
    put(t, "valid_two_steps", st(hdr, ids + sp + emb + struct.pack("<q", 7) + struct.pack("<q", 3)))
    put(t, "unaligned_start_pos", st({"step0.input_ids": ent("I64", [1, 3], 0, 24),
                                      "step0.start_pos": ent("I64", [1], 24, 32)}, ids + sp, pad=False))
    put(t, "step_gap", st({"step0.input_ids": ent("I64", [1, 3], 0, 24),
                           "step2.input_ids": ent("I64", [1, 3], 24, 48)}, ids + ids))
    put(t, "step_leading_zero", st({"step0.input_ids": ent("I64", [1, 3], 0, 24),
                                    "step00.embed": ent("BF16", [1, 3, 2], 24, 36)}, ids + emb))
    put(t, "step_max", st({"step4095.input_ids": ent("I64", [1, 3], 0, 24)}, ids))
    put(t, "input_ids_wrong_dtype", st({"step0.input_ids": ent("I32", [1, 3], 0, 12)}, ids[:12]))
    put(t, "batch_mismatch", st({"step0.input_ids": ent("I64", [1, 3], 0, 24),
                                 "step1.input_ids": ent("I64", [3, 1], 24, 48)}, ids + ids))
    put(t, "no_steps", st({"embed": ent("BF16", [1, 3, 2], 0, 12)}, emb))
    put(t, "start_pos_empty", st({"step0.input_ids": ent("I64", [1, 3], 0, 24),
                                  "step0.start_pos": ent("I64", [0], 24, 24)}, ids))


if __name__ == "__main__":
    st_header()
    st_index()
    config_seeds()
    budget()
    report()
    tokens()
    tapfile()
    n = sum(len(fs) for _, _, fs in os.walk(CORPUS))
    print("wrote %d seed files under %s" % (n, CORPUS))
