"""The official ONNX node test cases for the ops the importer supports, through cnncompile.

The onnx package builds its node cases in memory (onnx.backend.test.loader). Each case is one
node (or, for ``_expanded`` cases, the node's function body) with input and output data. A
compiled model has one runtime input: the case's first graph input is the data, and every
further input (weights, slopes, pads, bounds) is bound as an initializer holding the case's
data for it, as a compiler that specialises on weights must (TVM's ``freeze_params`` does the
same). The output must match the case's expected output within the case's own tolerance or
the project's (rtol 1e-4, atol 1e-5), whichever is wider.

Cases listed in EXCLUDED are outside what cnncompile compiles; each must still fail with a
clear CompileError or ValueError (never a crash or a wrong answer), and an excluded case that
starts to compile fails this suite until it is taken off the list.
"""
import copy
import re
import warnings

import numpy as np
import pytest

from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

import cnncompile

# The ops the importer supports (the ONNX frontend's list).
OPS = ("Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization "
       "Relu LeakyRelu PRelu Sigmoid Tanh HardSwish HardSigmoid Clip Gemm MatMul Flatten Reshape "
       "Add Mul Concat Softmax Pad Dropout Identity "
       "ReduceMean ReduceSum ReduceMax ReduceMin Abs Exp Log Sqrt Reciprocal Pow Softplus Mish").split()


# Ops the importer evaluates when their inputs are constants (Constant nodes and the like).
FOLDED = {"Constant", "CastLike", "Cast", "Shape"}
# Ops the importer converts that function bodies use, whose own cases are not run here (they
# take a second runtime input).
IN_BODIES = {"Sub", "Div"}


def _names(text):
    return text.split()


EXCLUDED = {}
# Data types other than float32: cnncompile compiles float32 models.
EXCLUDED.update(dict.fromkeys(_names("""
    test_add_int8 test_add_int16 test_add_uint8 test_add_uint16 test_add_uint32 test_add_uint64
    test_mul_int8 test_mul_int16 test_mul_uint8 test_mul_uint16 test_mul_uint32 test_mul_uint64
    test_clip_default_int8_min test_clip_default_int8_max test_clip_default_int8_inbounds
    test_clip_default_int8_inbounds_expanded test_maxpool_2d_uint8
    test_edge_pad test_reflect_pad test_wrap_pad"""), "not float32"))
# Training mode: batch statistics, random dropout, running-statistic and mask outputs.
EXCLUDED.update(dict.fromkeys(_names("""
    test_batchnorm_example_training_mode test_batchnorm_epsilon_training_mode
    test_training_dropout_default test_training_dropout test_training_dropout_default_mask
    test_training_dropout_mask test_training_dropout_zero_ratio_mask
    test_dropout_default_mask test_dropout_default_mask_ratio"""), "training mode / extra outputs"))
# 1-D data whose only dimension is joined or multiplied: it is the batch, so these move values
# across it (the 1-D elementwise cases run: their samples are scalars).
EXCLUDED.update(dict.fromkeys(_names("""
    test_concat_1d_axis_0 test_concat_1d_axis_negative_1 test_mul_example test_matmul_1d_3d
    test_matmul_1d_1d"""), "1-D data"))
# The second operand is a second runtime input that differs along dimension 0 (the batch),
# so binding it as a constant cannot express it: cnncompile compiles one runtime input.
EXCLUDED.update(dict.fromkeys(_names("""
    test_add test_mul test_prelu_example test_concat_2d_axis_0 test_concat_2d_axis_1
    test_concat_2d_axis_negative_2 test_concat_2d_axis_negative_1 test_concat_3d_axis_0
    test_concat_3d_axis_1 test_concat_3d_axis_2 test_concat_3d_axis_negative_3
    test_concat_3d_axis_negative_2 test_concat_3d_axis_negative_1 test_gemm_default_matrix_bias
    test_matmul_3d test_matmul_4d test_matmul_bcast test_matmul_4d_1d"""), "second runtime input"))
# Moving values across dimension 0: the compiled model takes any batch size, so dimension 0
# stays the batch (Flatten/Reshape that merge it, softmax over it, Gemm with transA, batch 0).
EXCLUDED.update(dict.fromkeys(_names("""
    test_flatten_axis0 test_flatten_axis2 test_flatten_axis3 test_flatten_negative_axis4
    test_flatten_negative_axis2 test_flatten_negative_axis1 test_reshape_reordered_all_dims
    test_reshape_one_dim test_reshape_negative_extended_dims test_reshape_allowzero_reordered
    test_softmax_axis_0 test_softmax_axis_0_expanded test_softmax_axis_0_expanded_ver18
    test_gemm_transposeA test_gemm_all_attributes"""), "batch dimension"))
# Layers cnncompile does not have: 3-D transposed convolution, MaxPool's Indices output,
# asymmetric cropping in a transposed convolution.
EXCLUDED.update(dict.fromkeys(_names("""
    test_convtranspose_3d test_maxpool_with_argmax_2d_precomputed_pads
    test_maxpool_with_argmax_2d_precomputed_strides test_convtranspose_autopad_same"""),
    "layer not supported"))
# Reductions and math: an exponent per element (cnncompile raises to one number), reductions
# over every axis (the batch included), inputs with no elements, other data types.
EXCLUDED.update(dict.fromkeys(_names("""
    test_pow_example test_pow test_pow_bcast_array test_pow_types_float32_int64
    test_pow_types_float32_int32 test_pow_types_float32_uint64 test_pow_types_float32_uint32"""),
    "an exponent per element"))
EXCLUDED.update(dict.fromkeys(_names("""
    test_reduce_max_default_axes_keepdim_example test_reduce_max_default_axes_keepdims_random
    test_reduce_mean_default_axes_keepdims_example test_reduce_mean_default_axes_keepdims_random
    test_reduce_min_default_axes_keepdims_example test_reduce_min_default_axes_keepdims_random
    test_reduce_sum_default_axes_keepdims_example test_reduce_sum_default_axes_keepdims_random"""),
    "batch dimension"))
EXCLUDED.update(dict.fromkeys(_names("""
    test_reduce_max_empty_set test_reduce_min_empty_set test_reduce_sum_empty_set
    test_reduce_sum_empty_set_non_reduced_axis_zero"""), "an empty input"))
EXCLUDED.update(dict.fromkeys(_names("""
    test_pow_types_int64_float32 test_pow_types_int32_float32 test_pow_types_int64_int64
    test_pow_types_int32_int32 test_reduce_max_bool_inputs test_reduce_max_empty_set_bool
    test_reduce_min_bool_inputs"""), "not float32"))
EXCLUDED.update(dict.fromkeys(_names("""
    test_softplus_example_expanded_ver18 test_softplus_expanded_ver18"""),
    "CastLike of the model input"))
# Inputs that are not tensors (sequences, optionals).
EXCLUDED.update(dict.fromkeys(_names("test_identity_sequence test_identity_opt"), "not a tensor"))
# Function bodies (_expanded cases) that use ops outside the list (Less, Where, Min, Max,
# ReduceMax, Exp...) are excluded by the rule in _load_cases, which names those ops.

def _load_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators warn about their own casts
        every = load_model_tests(kind="node")
    single = [c for c in every if len(c.model.graph.node) == 1
              and c.model.graph.node[0].op_type in OPS]
    names = {c.name for c in single}
    expanded = [c for c in every if "_expanded" in c.name
                and re.sub(r"_expanded.*", "", c.name) in names]
    for case in expanded:
        outside = {n.op_type for n in case.model.graph.node} - set(OPS) - FOLDED - IN_BODIES
        if outside:
            EXCLUDED.setdefault(case.name, "function body uses " + ", ".join(sorted(outside)))
    return single + expanded


CASES = _load_cases()


def _bind_extra_inputs(case):
    """The case's model with every graph input but the first made an initializer."""
    model = copy.deepcopy(case.model)
    inputs, _ = case.data_sets[0]
    for value_info, array in zip(list(model.graph.input)[1:], inputs[1:]):
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(array), value_info.name))
    del model.graph.input[1:]
    return model, np.asarray(inputs[0])


def _run(case):
    model, x = _bind_extra_inputs(case)
    compiled = cnncompile.from_onnx(model, input_shape=x.shape, werror=True)
    return compiled(x)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case):
    if case.name in EXCLUDED:
        with pytest.raises((cnncompile.CompileError, ValueError)):
            _run(case)
        return
    expected = np.asarray(case.data_sets[0][1][0])
    y = _run(case)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=max(1e-4, case.rtol), atol=max(1e-5, case.atol))


def test_exclusions_name_real_cases():
    names = {c.name for c in CASES}
    assert not set(EXCLUDED) - names, sorted(set(EXCLUDED) - names)
    run = len(CASES) - len(EXCLUDED)
    print(f"\nONNX node cases for {len(OPS)} ops: {len(CASES)} found, {run} run and pass, "
          f"{len(EXCLUDED)} excluded")
    assert run >= 90  # the count reported for this importer; a drop means cases were lost
