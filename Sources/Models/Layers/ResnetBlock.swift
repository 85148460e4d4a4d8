import Kernels

/// diffusers `ResnetBlock2D` (resnet_time_scale_shift "default", no up/down sampling):
/// h = conv1(SiLU(GroupNorm1(x))) [+ time_emb_proj(SiLU(temb))[:, :, None, None]];
/// h = conv2(SiLU(GroupNorm2(h))); out = (shortcut(x) + h) / output_scale_factor,
/// where shortcut is a 1×1 conv when the channel count changes.
struct ResnetBlock: @unchecked Sendable {
    /// GroupNorm over [inChannels]
    var norm1: NormWeights
    /// [outChannels, inChannels, 3, 3]
    var conv1: Conv2DWeights
    /// [outChannels, timeEmbeddingDim]; nil in the VAE (no time embedding)
    var timeEmbProj: LinearWeights?
    /// GroupNorm over [outChannels]
    var norm2: NormWeights
    /// [outChannels, outChannels, 3, 3]
    var conv2: Conv2DWeights
    /// [outChannels, inChannels, 1, 1], present when in ≠ out
    var shortcut: Conv2DWeights?
    let groups: Int
    let eps: Float
    let outputScale: Float

    var inChannels: Int { conv1.inChannels }
    var outChannels: Int { conv1.outChannels }

    init(_ s: WeightSource, _ prefix: String, in inC: Int, out outC: Int, timeEmbedding: Int?,
         groups: Int, eps: Float, outputScale: Float = 1) throws {
        norm1 = try NormWeights(s, prefix + ".norm1", channels: inC)
        conv1 = try Conv2DWeights(s, prefix + ".conv1", in: inC, out: outC, kernel: 3)
        timeEmbProj = try timeEmbedding.map { try LinearWeights(s, prefix + ".time_emb_proj", in: $0, out: outC) }
        norm2 = try NormWeights(s, prefix + ".norm2", channels: outC)
        conv2 = try Conv2DWeights(s, prefix + ".conv2", in: outC, out: outC, kernel: 3)
        shortcut = inC != outC ? try Conv2DWeights(s, prefix + ".conv_shortcut", in: inC, out: outC, kernel: 1) : nil
        self.groups = groups
        self.eps = eps
        self.outputScale = outputScale
    }

    /// - Parameters:
    ///   - x: [N, in, H, W]
    ///   - timeEmbedding: SiLU(temb), [N, timeEmbeddingDim], or nil
    ///   - output: [N, out, H, W]; must not alias x
    func callAsFunction(_ x: Tensor, timeEmbedding: Tensor?, output: Tensor, arena: Arena, pool: ThreadPool) {
        let n = x.shape[0], h = x.shape[2], w = x.shape[3]
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let hidden = arena.tensor([n, outChannels, h, w])
        do {
            let inner = arena.mark()
            let normed = arena.tensor(x.shape)
            groupNorm(x, groups: groups, gamma: norm1.weight, beta: norm1.bias, eps: eps, silu: true, output: normed, pool: pool)
            conv2d(normed, weight: conv1.weight, bias: conv1.bias, stride: 1, padding: .symmetric(1), output: hidden, pool: pool)
            arena.release(to: inner)
        }
        if let proj = timeEmbProj, let temb = timeEmbedding {
            let t = arena.tensor([n, outChannels])
            linear(temb, weight: proj.weight, bias: proj.bias, output: t, pool: pool)
            addPerChannel(hidden, t, pool: pool)
        }
        groupNorm(hidden, groups: groups, gamma: norm2.weight, beta: norm2.bias, eps: eps, silu: true, output: hidden, pool: pool)
        conv2d(hidden, weight: conv2.weight, bias: conv2.bias, stride: 1, padding: .symmetric(1), output: output, pool: pool)
        if let sc = shortcut {
            let s = arena.tensor([n, outChannels, h, w])
            conv2d(x, weight: sc.weight, bias: sc.bias, output: s, pool: pool)
            addScaled(output, s, scale: 1 / outputScale, output: output, pool: pool)
        } else {
            addScaled(output, x, scale: 1 / outputScale, output: output, pool: pool)
        }
    }

    /// Floating-point operations for one call on [n, in, h, w].
    func flops(n: Int, h: Int, w: Int) -> Double {
        let px = Double(n * h * w)
        var f = 2 * px * Double(outChannels) * Double(inChannels * 9 + outChannels * 9)
        if shortcut != nil { f += 2 * px * Double(outChannels * inChannels) }
        f += timeEmbProj?.flops(rows: n) ?? 0   // time_emb_proj, once per sample
        return f
    }
}
