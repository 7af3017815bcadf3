"""What cnncompile compiles, and the torch names it knows it does not.

Shared by the tracer (a traced tensor's unsupported methods), cnncompile.nn (placeholder
layers and functions) and the frontends (their error messages), so it imports nothing.
"""

SUPPORTED_HINT = ("supported layers: Conv1d/2d/3d, ConvTranspose2d, Linear, MaxPool2d, "
                  "AvgPool2d, AdaptiveAvg/MaxPool2d, BatchNorm2d, activations, Dropout, "
                  "Flatten, Unfold, Fold; see the README")

# torch.nn layers cnncompile does not compile: nn.<name> builds a placeholder layer
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

# torch.nn.functional functions it does not compile: F.<name> records a placeholder
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

# Tensor methods it does not compile: x.<name>() on a traced tensor records a placeholder
TENSOR_METHODS = """
permute transpose t mean sum max min amax amin argmax argmin squeeze unsqueeze expand expand_as
repeat chunk split narrow select index_select gather scatter clamp clip pow exp log abs sqrt
rsqrt matmul mm bmm norm std var exp_ sigmoid_ relu_ unbind roll flip masked_fill where sort
topk cumsum prod reciprocal sign floor ceil round square erf sin cos
""".split()
