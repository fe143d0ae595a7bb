import Foundation

extension Functional {
    /// N-d convolution (1-3 spatial axes inferred from the weight [out, in/groups, k...]), as torch's convNd.
    ///
    /// - Parameters:
    ///   - padding: `.valid`, `.same` (stride 1 only, asymmetric for even kernels), `.full` or `.explicit`.
    ///   - paddingMode: zeros, or reflect / replicate (the input is padded first, then convolved unpadded).
    ///   - epilogue: a fused per-channel affine + ReLU for inference; only without autodiff history.
    public static func conv(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1],
        padding: Padding = .valid, dilation: [Int] = [1], groups: Int = 1,
        paddingMode: PaddingMode = .zeros, epilogue: ConvEpilogue? = nil
    ) -> Tensor {
        let s = weight.rank - 2
        precondition((1...3).contains(s), "conv weight must have rank 3-5, got \(weight.shape)")
        precondition(x.rank == s + 2, "conv\(s)d expects a rank-\(s + 2) input, got \(x.shape)")
        let kernel = Array(weight.shape[2...])
        let strides = expand(stride, s, "stride"), dil = expand(dilation, s, "dilation")
        let cin = x.shape[1], cout = weight.shape[0]
        precondition(
            groups >= 1 && cin % groups == 0 && cout % groups == 0,
            "groups (\(groups)) must divide in (\(cin)) and out (\(cout)) channels")
        precondition(
            weight.shape[1] == cin / groups,
            "weight \(weight.shape) expects \(weight.shape[1] * groups) input channels, got \(cin)")
        if padding == .same {
            precondition(strides.allSatisfy { $0 == 1 }, "padding='same' is not supported for strided convolutions")
        }
        var input = x
        var amounts = padding.amounts(kernel: kernel, dilation: dil)
        if paddingMode != .zeros && amounts.contains(where: { $0.total > 0 }) {
            input = x.padded(spatial: amounts.map { ($0.front, $0.total - $0.front) }, mode: paddingMode)
            amounts = amounts.map { _ in (0, 0) }
        }
        let inSize = Array(input.shape[2...])
        var outSize: [Int] = []
        for i in 0..<s {
            let span: Int = dil[i] * (kernel[i] - 1)
            outSize.append((inSize[i] + amounts[i].total - span - 1) / strides[i] + 1)
        }
        precondition(
            outSize.allSatisfy { $0 > 0 },
            "conv output would be empty: input \(inSize), kernel \(kernel), padding \(amounts.map(\.total))")
        let geometry = ConvGeometry(
            spatialRank: s, batch: x.shape[0], inChannels: cin, outChannels: cout, groups: groups,
            input: ConvGeometry.lift(inSize, fill: 1), output: ConvGeometry.lift(outSize, fill: 1),
            kernel: ConvGeometry.lift(kernel, fill: 1), stride: ConvGeometry.lift(strides, fill: 1),
            padFront: ConvGeometry.lift(amounts.map(\.front), fill: 0), dilation: ConvGeometry.lift(dil, fill: 1))
        let xc = input.contiguous(), wc = weight.contiguous()
        var ep = epilogue ?? ConvEpilogue()
        if let bias, epilogue == nil { ep.shift = bias.scalars }
        precondition(
            epilogue == nil || !GradMode.isEnabled || !(x.requiresGrad || weight.requiresGrad),
            "fused conv epilogues are for inference without autodiff")
        let out = Tensor(zeros: [x.shape[0], cout] + outSize, zeroed: false)
        ConvolutionKernels.implicitGEMM(
            geometry: geometry, source: xc.pointer, sourceChannels: cin / groups, sourceSize: geometry.input,
            columns: geometry.output, transposed: false, weights: wc.pointer, rows: cout / groups,
            output: out.pointer, epilogue: ep)
        let inputs = [input, weight] + (bias.map { [$0] } ?? [])
        return Tensor.record(out, inputs) { g in
            let gc = g.contiguous()
            var gx: Tensor?, gw: Tensor?, gb: Tensor?
            if input.requiresGrad {
                let r = Tensor(zeros: input.shape, zeroed: false)
                ConvolutionKernels.implicitGEMM(
                    geometry: geometry, source: gc.pointer, sourceChannels: cout / groups,
                    sourceSize: geometry.output, columns: geometry.input, transposed: true,
                    weights: wc.pointer, swappedWeights: true, rows: cin / groups, output: r.pointer,
                    epilogue: ConvEpilogue())
                gx = r
            }
            if weight.requiresGrad {
                let r = Tensor(zeros: weight.shape, zeroed: false)
                ConvolutionKernels.weightGradient(
                    geometry: geometry, a: gc.pointer, rows: cout / groups, source: xc.pointer,
                    sourceChannels: cin / groups, sourceSize: geometry.input, columns: geometry.output,
                    into: r.pointer)
                gw = r
            }
            if let bias, bias.requiresGrad {
                gb = gc.sum(axes: [0] + Array(2..<(s + 2)))
            }
            return [gx, gw] + (bias == nil ? [] : [gb])
        }
    }

    /// `conv(Tensor.concat(parts, axis: 1), ...)` of a 2-d stride-1 convolution (groups 1, zeros padding) without
    /// materialising the concatenation, in inference: U-Net's decoder reads its up-sampled map and its skip in place.
    /// With autodiff history to record, or where no route reads split inputs, it concatenates and convolves.
    public static func conv(
        concatenating parts: [Tensor], weight: Tensor, bias: Tensor? = nil,
        padding: Padding = .same, epilogue: ConvEpilogue? = nil
    ) -> Tensor {
        func joined() -> Tensor {
            conv(Tensor.concat(parts, axis: 1), weight: weight, bias: bias, padding: padding, epilogue: epilogue)
        }
        let recording = GradMode.isEnabled && (weight.requiresGrad || parts.contains { $0.requiresGrad })
        guard !recording, parts.count > 1, weight.rank == 4, parts.allSatisfy({ $0.rank == 4 }),
            let first = parts.first,
            parts.allSatisfy({ $0.shape[0] == first.shape[0] && $0.shape[2...] == first.shape[2...] }),
            weight.shape[1] == parts.reduce(0, { $0 + $1.shape[1] })
        else { return joined() }
        let kernel = Array(weight.shape[2...])
        let amounts = padding.amounts(kernel: kernel, dilation: [1, 1])
        let inSize = Array(first.shape[2...])
        let outSize = (0..<2).map { inSize[$0] + amounts[$0].total - kernel[$0] + 1 }
        guard outSize.allSatisfy({ $0 > 0 }) else { return joined() }
        let cout = weight.shape[0]
        let geometry = ConvGeometry(
            spatialRank: 2, batch: first.shape[0], inChannels: weight.shape[1], outChannels: cout, groups: 1,
            input: ConvGeometry.lift(inSize, fill: 1), output: ConvGeometry.lift(outSize, fill: 1),
            kernel: ConvGeometry.lift(kernel, fill: 1), stride: [1, 1, 1],
            padFront: ConvGeometry.lift(amounts.map(\.front), fill: 0), dilation: [1, 1, 1])
        var ep = epilogue ?? ConvEpilogue()
        if let bias, epilogue == nil { ep.shift = bias.scalars }
        let contiguous = parts.map { $0.contiguous() }, wc = weight.contiguous()
        let out = Tensor(zeros: [first.shape[0], cout] + outSize, zeroed: false)
        let done = withExtendedLifetime(contiguous) {
            let input = ConvInput(
                parts: contiguous.map { (UnsafePointer($0.pointer), $0.shape[1]) },
                plane: inSize.reduce(1, *))
            return ConvolutionKernels.splitProduct(
                geometry: geometry, parts: input, weights: wc.pointer,
                rows: cout, output: out.pointer, epilogue: ep)
        }
        return done ? out : joined()
    }

    /// Transposed N-d convolution (weight [in, out/groups, k...]), as torch's conv_transposeNd.
    public static func convTranspose(
        _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: [Int] = [1],
        padding: [Int] = [0], outputPadding: [Int] = [0], groups: Int = 1,
        dilation: [Int] = [1]
    ) -> Tensor {
        let s = weight.rank - 2
        precondition(
            (1...3).contains(s) && x.rank == s + 2,
            "conv_transpose: input \(x.shape) and weight \(weight.shape) do not agree")
        let kernel = Array(weight.shape[2...])
        let strides = expand(stride, s, "stride"), dil = expand(dilation, s, "dilation")
        let pad = expand(padding, s, "padding"), outPad = expand(outputPadding, s, "output_padding")
        let cin = x.shape[1]
        precondition(
            weight.shape[0] == cin, "weight \(weight.shape) expects \(weight.shape[0]) input channels, got \(cin)")
        precondition(cin % groups == 0, "groups must divide the input channels")
        for i in 0..<s {
            precondition(outPad[i] < max(strides[i], dil[i]), "output_padding must be smaller than stride or dilation")
        }
        let cout = weight.shape[1] * groups
        let inSize = Array(x.shape[2...])
        var outSize: [Int] = []
        for i in 0..<s {
            let span: Int = dil[i] * (kernel[i] - 1)
            outSize.append((inSize[i] - 1) * strides[i] - 2 * pad[i] + span + outPad[i] + 1)
        }
        precondition(outSize.allSatisfy { $0 > 0 }, "conv_transpose output would be empty")
        if NonOverlappingTransposedConv.applies(
            kernel: kernel, stride: strides, padding: pad, outputPadding: outPad,
            dilation: dil, groups: groups, spatialRank: s)
        {
            let xc = x.contiguous(), wc = weight.contiguous()
            let out = NonOverlappingTransposedConv.forward(xc, wc, bias: bias?.scalars)
            let inputs = [x, weight] + (bias.map { [$0] } ?? [])
            return Tensor.record(out, inputs) { g in
                let gc = g.contiguous()
                let (gx, gw) = NonOverlappingTransposedConv.backward(
                    gc, x: xc, w: wc, needInput: x.requiresGrad,
                    needWeight: weight.requiresGrad)
                let gb = bias.flatMap { $0.requiresGrad ? gc.sum(axes: [0, 2, 3]) : nil }
                return [gx, gw] + (bias == nil ? [] : [gb])
            }
        }
        // As a convolution from the output space back to the input space.
        let geometry = ConvGeometry(
            spatialRank: s, batch: x.shape[0], inChannels: cout, outChannels: cin, groups: groups,
            input: ConvGeometry.lift(outSize, fill: 1), output: ConvGeometry.lift(inSize, fill: 1),
            kernel: ConvGeometry.lift(kernel, fill: 1), stride: ConvGeometry.lift(strides, fill: 1),
            padFront: ConvGeometry.lift(pad, fill: 0), dilation: ConvGeometry.lift(dil, fill: 1))
        let xc = x.contiguous(), wc = weight.contiguous()
        let cinG = cin / groups, coutG = cout / groups
        var ep = ConvEpilogue()
        if let bias { ep.shift = bias.scalars }
        let out = Tensor(zeros: [x.shape[0], cout] + outSize, zeroed: false)
        ConvolutionKernels.implicitGEMM(
            geometry: geometry, source: xc.pointer, sourceChannels: cinG, sourceSize: geometry.output,
            columns: geometry.input, transposed: true, weights: wc.pointer, swappedWeights: true, rows: coutG,
            output: out.pointer, epilogue: ep)
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])
        return Tensor.record(out, inputs) { g in
            let gc = g.contiguous()
            var gx: Tensor?, gw: Tensor?, gb: Tensor?
            if x.requiresGrad {
                let r = Tensor(zeros: x.shape, zeroed: false)
                ConvolutionKernels.implicitGEMM(
                    geometry: geometry, source: gc.pointer, sourceChannels: coutG, sourceSize: geometry.input,
                    columns: geometry.output, transposed: false, weights: wc.pointer, rows: cinG,
                    output: r.pointer, epilogue: ConvEpilogue())
                gx = r
            }
            if weight.requiresGrad {
                let r = Tensor(zeros: weight.shape, zeroed: false)
                ConvolutionKernels.weightGradient(
                    geometry: geometry, a: xc.pointer, rows: cinG, source: gc.pointer, sourceChannels: coutG,
                    sourceSize: geometry.input, columns: geometry.output, into: r.pointer)
                gw = r
            }
            if let bias, bias.requiresGrad { gb = gc.sum(axes: [0] + Array(2..<(s + 2))) }
            return [gx, gw] + (bias == nil ? [] : [gb])
        }
    }
}
