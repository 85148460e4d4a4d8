import Kernels

extension Conv2DWeights {
    /// A convolution with `bias=False` in PyTorch: only `prefix.weight` is read; the bias is
    /// zeros (adding 0 is exact, so the result is the bias-free convolution's).
    init(_ source: WeightSource, biasFree prefix: String, in inC: Int, out outC: Int, kernel k: Int) throws {
        weight = try source.weight(prefix + ".weight", [outC, inC, k, k])
        bias = Tensor(zeros: [outC])
    }
}

/// diffusers `AutoencoderTinyBlock`: `fuse(conv(x) + skip(x))` with
/// `conv` = 3×3 conv → ReLU → 3×3 conv → ReLU → 3×3 conv, `skip` a bias-free 1×1 conv when
/// the width changes (identity otherwise) and `fuse` a ReLU.
struct TinyVAEBlock: @unchecked Sendable {
    /// conv.0, conv.2, conv.4: [out, in or out, 3, 3] + bias
    var conv0: Conv2DWeights
    var conv2: Conv2DWeights
    var conv4: Conv2DWeights
    /// skip: [out, in, 1, 1], no bias; nil when in = out (`nn.Identity`)
    var skip: Conv2DWeights?

    init(_ s: WeightSource, _ p: String, in inC: Int, out outC: Int) throws {
        conv0 = try Conv2DWeights(s, p + ".conv.0", in: inC, out: outC, kernel: 3)
        conv2 = try Conv2DWeights(s, p + ".conv.2", in: outC, out: outC, kernel: 3)
        conv4 = try Conv2DWeights(s, p + ".conv.4", in: outC, out: outC, kernel: 3)
        skip = inC != outC ? try Conv2DWeights(s, biasFree: p + ".skip", in: inC, out: outC, kernel: 1) : nil
    }

    var outChannels: Int { conv4.outChannels }

    /// x: [N, in, H, W] → output [N, out, H, W] (must not alias x).
    func callAsFunction(_ x: Tensor, output: Tensor, arena: Arena, pool: ThreadPool) {
        let mark = arena.mark()
        defer { arena.release(to: mark) }
        let a = arena.tensor(output.shape), b = arena.tensor(output.shape)
        conv2d(x, weight: conv0.weight, bias: conv0.bias, padding: .symmetric(1), output: a, pool: pool)
        activate(.relu, a, output: a, pool: pool)
        conv2d(a, weight: conv2.weight, bias: conv2.bias, padding: .symmetric(1), output: b, pool: pool)
        activate(.relu, b, output: b, pool: pool)
        conv2d(b, weight: conv4.weight, bias: conv4.bias, padding: .symmetric(1), output: output, pool: pool)
        if let skip {
            conv2d(x, weight: skip.weight, bias: nil, output: a, pool: pool)
            add(output, a, output: output, pool: pool)
        } else {
            add(output, x, output: output, pool: pool)
        }
        activate(.relu, output, output: output, pool: pool)
    }

    func flops(n: Int, h: Int, w: Int) -> Double {
        [conv0, conv2, conv4].reduce(0) { $0 + $1.flops(n: n, h: h, w: w) } + (skip?.flops(n: n, h: h, w: w) ?? 0)
    }
}

/// `EncoderTiny.layers` (an `nn.Sequential`, so tensors are named by layer index):
/// stage 0 a 3×3 conv from the image, later stages a bias-free stride-2 3×3 conv, each
/// followed by its blocks; then a 3×3 conv to the latent channels.
struct TinyVAEEncoderWeights: @unchecked Sendable {
    /// encoder.layers.k: [ch, in or ch, 3, 3] (+ bias in stage 0)
    var stageConvs: [Conv2DWeights]
    /// encoder.layers.k for each block of each stage
    var blocks: [[TinyVAEBlock]]
    /// the last layer: [latent, ch, 3, 3] + bias
    var convOut: Conv2DWeights

    init(config c: TinyVAEConfig, source s: WeightSource) throws {
        var index = 0
        func next() -> String { defer { index += 1 }; return "encoder.layers.\(index)" }
        var convs: [Conv2DWeights] = []
        var stages: [[TinyVAEBlock]] = []
        for (i, count) in c.numEncoderBlocks.enumerated() {
            let ch = c.encoderBlockOutChannels[i]
            convs.append(i == 0 ? try Conv2DWeights(s, next(), in: c.inChannels, out: ch, kernel: 3)
                         : try Conv2DWeights(s, biasFree: next(), in: ch, out: ch, kernel: 3))
            stages.append(try (0..<count).map { _ in try TinyVAEBlock(s, next(), in: ch, out: ch) })
        }
        stageConvs = convs
        blocks = stages
        convOut = try Conv2DWeights(s, next(), in: c.encoderBlockOutChannels[c.encoderBlockOutChannels.count - 1],
                                    out: c.latentChannels, kernel: 3)
    }
}

/// `DecoderTiny.layers`: conv_in (3×3, latent → ch) and its ReLU (index 1), then per stage
/// its blocks, an `nn.Upsample` (no tensors, but an index) except in the last stage, and a
/// 3×3 conv: bias-free to the same width, or biased to the image channels in the last stage.
struct TinyVAEDecoderWeights: @unchecked Sendable {
    /// decoder.layers.0: [ch, latent, 3, 3] + bias
    var convIn: Conv2DWeights
    /// decoder.layers.k for each block of each stage
    var blocks: [[TinyVAEBlock]]
    /// each stage's closing conv: [ch, ch, 3, 3] (no bias), the last [out, ch, 3, 3] + bias
    var stageConvs: [Conv2DWeights]

    init(config c: TinyVAEConfig, source s: WeightSource) throws {
        var index = 0
        func next() -> String { defer { index += 1 }; return "decoder.layers.\(index)" }
        let channels = c.decoderBlockOutChannels
        convIn = try Conv2DWeights(s, next(), in: c.latentChannels, out: channels[0], kernel: 3)
        index += 1  // the ReLU
        var stages: [[TinyVAEBlock]] = []
        var convs: [Conv2DWeights] = []
        for (i, count) in c.numDecoderBlocks.enumerated() {
            let ch = channels[i], last = i == channels.count - 1
            stages.append(try (0..<count).map { _ in try TinyVAEBlock(s, next(), in: ch, out: ch) })
            if !last { index += 1 }  // nn.Upsample
            convs.append(last ? try Conv2DWeights(s, next(), in: ch, out: c.outChannels, kernel: 3)
                         : try Conv2DWeights(s, biasFree: next(), in: ch, out: ch, kernel: 3))
        }
        blocks = stages
        stageConvs = convs
    }
}
