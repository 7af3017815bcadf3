"""Units shared by the family models: the MobileNet channel rounding, conv + BatchNorm
(+ activation), and squeeze-and-excitation."""
from torch import nn


def _divisible(value, divisor=8):
    """``value`` rounded to a multiple of ``divisor``, never more than 10% below it (the
    channel rounding of the MobileNet family)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(c_in, c_out, kernel=1, stride=1, groups=1, act=None, dilation=1, eps=1e-5):
    """Conv (no bias) + BatchNorm (+ activation): the unit most of these networks are made of."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, dilation * (kernel - 1) // 2,
                        dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=eps)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gates from the pooled input: 1x1 conv, act, 1x1 conv, gate, times the input."""

    def __init__(self, channels, squeezed, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


def init_weights(model, linear):
    """torchvision's initialisation of the MobileNet family: convs Kaiming-normal over their
    fan-out, conv biases zero; ``linear(m)`` sets each Linear's weight, its bias zero."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            linear(m)
            nn.init.zeros_(m.bias)
