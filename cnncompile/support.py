"""What cnncompile compiles, and the torch names it knows it does not.

Shared by the tracer (a traced tensor's unsupported methods), cnncompile.nn (placeholder
layers and functions) and the frontends (their error messages), so it imports nothing.
"""

SUPPORTED_HINT = ("supported layers: Conv1d/2d/3d, ConvTranspose2d, Linear, Max/AvgPool1d/2d/3d, "
                  "AdaptiveAvg/MaxPool1d/2d/3d, BatchNorm2d, LayerNorm, GroupNorm, "
                  "InstanceNorm, activations, Upsample/interpolate, Pixel/ChannelShuffle, "
                  "Dropout, Flatten, Unfold, Fold, and the tensor methods of forward() code "
                  "(mean, sum, permute, chunk, slicing, ...); see the README")

# torch.nn layers cnncompile does not compile: nn.<name> builds a placeholder layer
TORCH_NN_LAYERS = """
ConvTranspose1d ConvTranspose3d LazyConv1d LazyConv2d LazyConv3d LazyConvTranspose1d
LazyConvTranspose2d LazyConvTranspose3d MaxUnpool1d MaxUnpool2d MaxUnpool3d FractionalMaxPool2d
FractionalMaxPool3d LPPool1d LPPool2d LPPool3d Threshold GLU Hardshrink LogSigmoid
MultiheadAttention PReLU Softsign Softshrink Tanhshrink Softmin Softmax2d RReLU CELU SELU
BatchNorm1d BatchNorm3d LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d SyncBatchNorm
LazyInstanceNorm1d LazyInstanceNorm2d LazyInstanceNorm3d LocalResponseNorm RMSNorm RNNBase RNN
LSTM GRU RNNCell LSTMCell GRUCell Transformer TransformerEncoder TransformerDecoder
TransformerEncoderLayer TransformerDecoderLayer Bilinear LazyLinear FeatureAlphaDropout
Embedding EmbeddingBag CosineSimilarity PairwiseDistance Unflatten ModuleDict ParameterList
ParameterDict
""".split()

# torch.nn.functional functions it does not compile: F.<name> records a placeholder
TORCH_FUNCTIONS = """
grid_sample affine_grid embedding embedding_bag one_hot normalize conv_transpose1d
conv_transpose3d conv_tbc lp_pool1d lp_pool2d max_unpool1d max_unpool2d max_unpool3d
fractional_max_pool2d prelu rrelu selu celu logsigmoid softsign softmin glu threshold
hardshrink tanhshrink softshrink local_response_norm cosine_similarity pairwise_distance pdist
scaled_dot_product_attention multi_head_attention_forward bilinear feature_alpha_dropout
rms_norm
""".split()

# Tensor methods it does not compile: x.<name>() on a traced tensor records a placeholder
TENSOR_METHODS = """
t max min argmax argmin expand expand_as repeat index_select gather scatter mm bmm norm std var
exp_ sigmoid_ relu_ roll flip masked_fill where sort topk cumsum prod sign floor ceil round sin
cos
""".split()
