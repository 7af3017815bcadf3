"""matmul of two computed values: per sample, batch dimensions broadcast."""


def attention_like(nn, F, cat):
    class AttentionLike(nn.Module):
        """Two maps multiplied per channel, one broadcast over channels, and 3-D operands."""
        def __init__(self):
            super().__init__()
            self.q, self.k, self.g = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 3, padding=1), \
                nn.Conv2d(3, 1, 1)

        def forward(self, x):
            n = x.size(0)
            q, k = self.q(x), self.k(x).reshape(n, 2, 6, 4)  # (N, 2, 4, 6) @ (N, 2, 6, 4)
            a = q @ k
            b = q @ self.g(x).reshape(n, 1, 6, 4)          # (N, 1, 6, 4) broadcast
            c = q.reshape(n, 8, 6) @ k.reshape(n, 6, 8)     # (N, 8, 6) @ (N, 6, 8)
            return cat([a.flatten(1), b.flatten(1), c.flatten(1)], 1)
    return AttentionLike()


CASES = {
    "matmul": [(attention_like, (1, 3, 4, 6))],
}
