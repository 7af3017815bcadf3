"""torch.nn names that cnncompile does not compile. Using one builds a placeholder layer, so
that compiling the model reports every unsupported layer at once instead of stopping at the
first AttributeError."""
from .. import trace

SUPPORTED_HINT = ("supported layers: Conv1d/2d/3d, ConvTranspose2d, Linear, MaxPool2d, "
                  "AvgPool2d, AdaptiveAvg/MaxPool2d, BatchNorm2d, activations, Dropout, "
                  "Flatten, Unfold, Fold; see the README")

TORCH_NN_LAYERS = """
ConvTranspose1d ConvTranspose3d LazyConv1d LazyConv2d LazyConv3d LazyConvTranspose1d
LazyConvTranspose2d LazyConvTranspose3d MaxPool1d MaxPool3d MaxUnpool1d MaxUnpool2d MaxUnpool3d
AvgPool1d AvgPool3d FractionalMaxPool2d FractionalMaxPool3d LPPool1d LPPool2d LPPool3d
AdaptiveMaxPool1d AdaptiveMaxPool3d AdaptiveAvgPool1d AdaptiveAvgPool3d Threshold GLU Hardshrink LogSigmoid MultiheadAttention PReLU Softsign
Softplus Softshrink Tanhshrink Softmin Softmax2d Mish RReLU CELU SELU BatchNorm1d BatchNorm3d
LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d GroupNorm SyncBatchNorm InstanceNorm1d
InstanceNorm2d InstanceNorm3d LazyInstanceNorm1d LazyInstanceNorm2d LazyInstanceNorm3d LayerNorm
LocalResponseNorm RMSNorm RNNBase RNN LSTM GRU RNNCell LSTMCell GRUCell Transformer
TransformerEncoder TransformerDecoder TransformerEncoderLayer TransformerDecoderLayer Bilinear
LazyLinear FeatureAlphaDropout Embedding EmbeddingBag CosineSimilarity PairwiseDistance
PixelShuffle PixelUnshuffle Upsample UpsamplingNearest2d UpsamplingBilinear2d ChannelShuffle
Unflatten ModuleDict ParameterList ParameterDict
""".split()

TORCH_FUNCTIONS = """
interpolate upsample upsample_nearest upsample_bilinear grid_sample affine_grid pixel_shuffle
pixel_unshuffle layer_norm group_norm instance_norm embedding embedding_bag one_hot normalize
conv_transpose1d conv_transpose3d conv_tbc max_pool1d max_pool3d avg_pool1d avg_pool3d
adaptive_avg_pool1d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool3d lp_pool1d
lp_pool2d max_unpool1d max_unpool2d max_unpool3d fractional_max_pool2d prelu rrelu softplus mish
selu celu logsigmoid softsign softmin glu threshold hardshrink tanhshrink softshrink
local_response_norm cosine_similarity pairwise_distance pdist scaled_dot_product_attention
multi_head_attention_forward bilinear channel_shuffle feature_alpha_dropout rms_norm
""".split()

TENSOR_METHODS = """
permute transpose t mean sum max min amax amin argmax argmin squeeze unsqueeze expand expand_as
repeat chunk split narrow select index_select gather scatter clamp clip pow exp log abs sqrt
rsqrt matmul mm bmm norm std var exp_ sigmoid_ relu_ unbind roll flip masked_fill where sort
topk cumsum prod reciprocal sign floor ceil round square erf sin cos
""".split()


def record(what, inputs, hint=None, name=None):
    tensors = [t for t in inputs if isinstance(t, trace.Tensor)]
    if not tensors:
        from ..errors import UnsupportedError
        raise UnsupportedError(f"{what} is not supported by cnncompile" + (f"; {hint}" if hint else ""))
    return trace.apply("unsupported", tensors, {"what": what, "hint": hint}, name=name)


_classes = {}


def layer_class(name):
    """A stand-in for torch.nn.<name>: constructs with any arguments, fails when compiled."""
    from .module import Module
    if name not in _classes:
        def __init__(self, *args, **kwargs):
            Module.__init__(self)

        def forward(self, *args, **kwargs):
            return record(f"nn.{name}", list(args) + list(kwargs.values()), name=name.lower())
        _classes[name] = type(name, (Module,), {"op_name": "unsupported", "__init__": __init__,
                                                "forward": forward, "__module__": __name__})
    return _classes[name]


def function(name):
    def unsupported(*args, **kwargs):
        return record(f"F.{name}", list(args) + list(kwargs.values()), name=name)
    unsupported.__name__ = name
    return unsupported
