import Models

// Analytic FLOP counts of one forward pass, from the architecture in the config.
// Convention: a multiply-add is 2 FLOPs; only convolutions, linear layers and the two
// attention matrix products are counted (norms, activations, softmax, biases, residual
// adds are < 1% and left out). Layer structure follows diffusers 0.x:
// `UNet2DConditionModel.__init__` (down / mid / up block channel bookkeeping),
// `ResnetBlock2D`, `Transformer2DModel` + `BasicTransformerBlock` (GEGLU feed-forward,
// inner = 4·C), `AutoencoderKL` `Decoder`.

/// 2·n·hw·cout·cin·k² for a k×k convolution producing hw output pixels.
func convFlops(n: Int, hw: Int, cin: Int, cout: Int, k: Int) -> Double {
    2 * Double(n * hw) * Double(cout) * Double(cin * k * k)
}

/// `ResnetBlock2D`: two 3×3 convs, time projection, 1×1 shortcut when channels change.
func resnetFlops(n: Int, hw: Int, cin: Int, cout: Int, timeDim: Int?) -> Double {
    var f = convFlops(n: n, hw: hw, cin: cin, cout: cout, k: 3) + convFlops(n: n, hw: hw, cin: cout, cout: cout, k: 3)
    if let t = timeDim { f += 2 * Double(n * t * cout) }
    if cin != cout { f += convFlops(n: n, hw: hw, cin: cin, cout: cout, k: 1) }
    return f
}

/// `Transformer2DModel` with `layers` `BasicTransformerBlock`s at C channels over hw tokens,
/// cross-attending to `contextLength` tokens of width `contextDim`.
func transformerFlops(n: Int, hw: Int, c: Int, layers: Int, contextLength: Int, contextDim: Int) -> Double {
    let rows = Double(n * hw), cc = Double(c)
    var block = 2 * rows * cc * cc * 3                                   // self q, k, v
    block += 4 * Double(n) * Double(hw) * Double(hw) * cc                // QKᵀ and PV
    block += 2 * rows * cc * cc                                          // self out
    block += 2 * rows * cc * cc                                          // cross q
    block += 2 * 2 * Double(n * contextLength) * Double(contextDim) * cc // cross k, v
    block += 4 * Double(n) * Double(hw) * Double(contextLength) * cc     // cross QKᵀ and PV
    block += 2 * rows * cc * cc                                          // cross out
    block += 2 * rows * cc * 8 * cc + 2 * rows * 4 * cc * cc             // GEGLU in (C→8C), out (4C→C)
    return 2 * 2 * rows * cc * cc + Double(layers) * block               // proj_in + proj_out
}

/// One UNet evaluation on n latents of h×w.
func unetFlops(_ c: UNetConfig, n: Int, h: Int, w: Int, contextLength: Int) -> Double {
    let boc = c.blockOutChannels, t = c.timeEmbedding.dimension
    var f = convFlops(n: n, hw: h * w, cin: c.inChannels, cout: boc[0], k: 3)
    f += 2 * Double(n) * Double(boc[0] * t + t * t)                      // time embedding MLP
    if let a = c.additionEmbedding {                                     // SDXL add_embedding MLP
        f += 2 * Double(n) * Double(a.inputDim * t + t * t)
    }
    var hh = h, ww = w
    var out = boc[0]
    for (i, kind) in c.downBlockTypes.enumerated() {
        let cin = out
        out = boc[i]
        for j in 0..<c.layersPerBlock[i] {
            f += resnetFlops(n: n, hw: hh * ww, cin: j == 0 ? cin : out, cout: out, timeDim: t)
            if kind == .crossAttention {
                f += transformerFlops(n: n, hw: hh * ww, c: out, layers: c.transformerLayersPerBlock[i][j],
                                      contextLength: contextLength, contextDim: c.crossAttentionDim)
            }
        }
        if i < boc.count - 1 {
            let p = c.downsamplePadding
            hh = (hh + 2 * p - 3) / 2 + 1
            ww = (ww + 2 * p - 3) / 2 + 1
            f += convFlops(n: n, hw: hh * ww, cin: out, cout: out, k: 3)
        }
    }
    let last = boc[boc.count - 1]
    switch c.midBlockType {                                              // diffusers get_mid_block
    case .crossAttention:
        f += 2 * resnetFlops(n: n, hw: hh * ww, cin: last, cout: last, timeDim: t)
        f += transformerFlops(n: n, hw: hh * ww, c: last, layers: c.midTransformerLayers,
                              contextLength: contextLength, contextDim: c.crossAttentionDim)
    case .resnet:
        f += resnetFlops(n: n, hw: hh * ww, cin: last, cout: last, timeDim: t)
    case .absent:
        break
    }
    let rev = Array(boc.reversed()), revLayers = Array(c.layersPerBlock.reversed())
    var outCh = rev[0]
    for (i, kind) in c.upBlockTypes.enumerated() {
        let prevOut = outCh
        outCh = rev[i]
        let inCh = rev[min(i + 1, boc.count - 1)]
        let layers = revLayers[i] + 1
        for j in 0..<layers {
            let skip = j == layers - 1 ? inCh : outCh
            let resIn = j == 0 ? prevOut : outCh
            f += resnetFlops(n: n, hw: hh * ww, cin: resIn + skip, cout: outCh, timeDim: t)
            if kind == .crossAttention {
                f += transformerFlops(n: n, hw: hh * ww, c: outCh, layers: c.upTransformerLayersPerBlock[i][j],
                                      contextLength: contextLength, contextDim: c.crossAttentionDim)
            }
        }
        if i < boc.count - 1 {
            hh *= 2
            ww *= 2
            f += convFlops(n: n, hw: hh * ww, cin: outCh, cout: outCh, k: 3)
        }
    }
    f += convFlops(n: n, hw: hh * ww, cin: boc[0], cout: c.outChannels, k: 3)
    return f
}

/// One VAE decode of n latents of h×w (AutoencoderKL `post_quant_conv` + `Decoder`).
func vaeDecodeFlops(_ c: VAEConfig, n: Int, h: Int, w: Int) -> Double {
    let rev = Array(c.blockOutChannels.reversed())
    var hw = h * w
    var f = 0.0
    if c.usePostQuantConv { f += convFlops(n: n, hw: hw, cin: c.latentChannels, cout: c.latentChannels, k: 1) }
    f += convFlops(n: n, hw: hw, cin: c.latentChannels, cout: rev[0], k: 3)
    let top = Double(rev[0])
    f += 2 * resnetFlops(n: n, hw: hw, cin: rev[0], cout: rev[0], timeDim: nil)
    if c.midBlockAddAttention {
        f += 4 * 2 * Double(n * hw) * top * top + 4 * Double(n) * Double(hw) * Double(hw) * top
    }
    var outCh = rev[0]
    for i in 0..<rev.count {
        let prev = outCh
        outCh = rev[i]
        for j in 0..<(c.layersPerBlock + 1) {
            f += resnetFlops(n: n, hw: hw, cin: j == 0 ? prev : outCh, cout: outCh, timeDim: nil)
        }
        if i < rev.count - 1 {
            hw *= 4
            f += convFlops(n: n, hw: hw, cin: outCh, cout: outCh, k: 3)
        }
    }
    f += convFlops(n: n, hw: hw, cin: rev[rev.count - 1], cout: c.outChannels, k: 3)
    return f
}
