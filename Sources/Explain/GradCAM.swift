import Foundation
import TesseraData
import TesseraEngine
import TesseraNN

/// How an attribution map is made.
public enum CAMMethod: String, CaseIterable, Codable, Sendable {
    /// Selvaraju et al. 2017: channel weights = spatial mean of the gradient; map = ReLU(sum of weighted channels).
    case gradcam
    /// Chattopadhay et al. 2018: channel weights from positive gradients with second/third-order coefficients.
    case gradcamPlusPlus = "gradcam++"
    /// Jiang et al. 2021: every position weighted by its own positive gradient.
    case layercam
    /// Draelos and Carin 2020: the element-wise product of gradient and activation summed over channels (Grad-CAM
    /// without the spatial average, so the map is the gradient's own contribution at each position).
    case hirescam
    /// Fu et al. 2020: channel weights sum(gradient x activation) / (sum(activation) + 1e-7).
    case xgradcam
    /// Muhammad and Yilmaz 2020: the activations' first principal component (no gradient, no class); its sign
    /// chosen so the larger magnitude is positive (Seg-Eigen-CAM's correction of SVD's arbitrary sign).
    case eigencam
    /// Wang et al. 2020: channel weights = softmax over channels of the target's score on the input multiplied by
    /// each channel's map (upsampled, align-corners bilinear, min-max scaled); one forward pass per channel.
    case scorecam
    /// Desai and Ramaswamy 2020: channel weights = the target's relative drop when the channel is zeroed at the
    /// layer; one forward pass per channel.
    case ablationcam
    /// Selvaraju et al. 2017, section 3.2: guided backpropagation's input gradient (Springenberg et al. 2015)
    /// times the Grad-CAM heatmap, per input channel: Grad-CAM's place with the fine detail of the gradient. The
    /// heatmap is each pixel's largest magnitude over the channels; `CAMResult.guided` keeps the channels.
    case guidedGradcam = "guided-gradcam"
    /// Zeiler and Fergus 2014: the drop of the target when a patch of the input is blanked (needs no gradients).
    case occlusion
    /// Ribeiro et al. 2016: a weighted linear surrogate of the target fitted on copies of the image with random
    /// superpixels hidden (`LIME`); the map is each superpixel's coefficient (model-agnostic, no layer).
    case lime

    /// Whether the method reads a layer's activations (`--layer`); occlusion and LIME only see the input.
    public var usesLayer: Bool { self != .occlusion && self != .lime }
}

/// What is explained: a classifier's class logit, or the sum of a segmenter's class-c logits over a region.
public enum CAMTarget {
    /// `logits[0, class]` of a classifier's [1, classes] output.
    case classLogit(Int)
    /// The sum of `logits[0, class]` over the output pixels where `region` (row-major, the output's H x W) is non-zero.
    case region(class: Int, region: [Float])

    public var classIndex: Int {
        switch self {
        case .classLogit(let c), .region(let c, _): return c
        }
    }

    /// The target of each item of a batch of logits, as a tensor that back-propagates ([N]).
    func values(_ logits: Tensor) -> Tensor {
        let n = logits.shape[0]
        switch self {
        case .classLogit(let c):
            var onehot = [Float](repeating: 0, count: logits.shape[1])
            onehot[c] = 1
            return (logits * Tensor(onehot, shape: [1, logits.shape[1]])).sum(axes: [1])
        case .region(let c, let region):
            let classes = logits.shape[1], plane = logits.count / (n * classes)
            precondition(region.count == plane, "region covers \(region.count) pixels, the output has \(plane)")
            var weights = [Float](repeating: 0, count: classes * plane)
            for i in 0..<plane { weights[c * plane + i] = region[i] }
            let m = Tensor(weights, shape: [1] + Array(logits.shape.dropFirst()))
            return (logits * m).reshaped([n, classes * plane]).sum(axes: [1])
        }
    }
}

/// An attribution map for one input.
public struct CAMResult {
    /// Channel weights (Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM, Ablation-CAM); empty for the others.
    public var weights: [Float]
    /// The map at the layer's resolution after the ReLU, [h, w] (occlusion: the input's resolution, before it).
    public var cam: Tensor
    /// The map upsampled bilinearly to the input (align_corners false), cropped to `crop`, scaled to [0, 1].
    public var heatmap: [Float]
    public var width: Int, height: Int
    /// The target's value for the unchanged input.
    public var score: Float
    /// True when the map is zero everywhere: the heatmap is then all zeros (never NaN).
    public var isZero: Bool
    /// Guided Grad-CAM's map per input channel over `crop`, [C][height][width] (nil for the other methods).
    public var guided: [Float]? = nil
}

/// A failure to explain: unknown layer, a layer that did not run, a target outside the output.
public struct CAMError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Class-activation maps of a model for one input [1, C, H, W] at a layer given by its dotted path (the CAM
/// family, as pytorch-grad-cam defines each), or occlusion sensitivity.
public struct GradCAM {
    public var method: CAMMethod
    /// Dotted module path (`layer4`, `decoder.3`); unused by occlusion.
    public var layer: String
    /// Occlusion patch edge and step in input pixels (nil: an eighth of the shorter side, and half the patch).
    public var patch: Int?
    public var stride: Int?

    public init(method: CAMMethod = .gradcam, layer: String, patch: Int? = nil, stride: Int? = nil) {
        self.method = method
        self.layer = layer
        self.patch = patch
        self.stride = stride
    }

    /// The map of `target` for `input` [1, C, H, W] in evaluation mode; the heatmap covers `crop` of the input
    /// (default: all of it). The model's parameters and mode are left as they were.
    public func explain(model: Module, input: Tensor, target: CAMTarget, crop: PixelWindow? = nil) throws -> CAMResult {
        precondition(input.rank == 4 && input.shape[0] == 1, "explain takes one input [1, C, H, W]")
        let crop = crop ?? PixelWindow(x: 0, y: 0, width: input.shape[3], height: input.shape[2])
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let weights: [Float], cam: Tensor, score: Float
        switch method {
        case .occlusion: return try occlusion(model: model, input: input, target: target, crop: crop)
        case .lime:
            throw CAMError(reason: "LIME works on the image's superpixels, not on one input tensor: use LIME.explain")
        case .eigencam, .scorecam, .ablationcam:
            (weights, cam, score) = try gradientFree(model: model, input: input, target: target)
        case .gradcam, .gradcamPlusPlus, .layercam, .hirescam, .xgradcam, .guidedGradcam:
            let (activation, gradient, value) = try activationAndGradient(model: model, input: input, target: target)
            (weights, cam) = Self.combine(
                method: method == .guidedGradcam ? .gradcam : method, activation: activation, gradient: gradient)
            score = value
        }
        let (heatmap, isZero) = Self.heatmap(cam, inputHeight: input.shape[2], inputWidth: input.shape[3], crop: crop)
        var result = CAMResult(
            weights: weights, cam: cam, heatmap: heatmap, width: crop.width, height: crop.height,
            score: score, isZero: isZero)
        if method == .guidedGradcam {
            result.guide(by: Self.guidedGradient(model: model, input: input, target: target), input: input, crop: crop)
        }
        return result
    }

    /// The layer's output for `input` and the gradient of the target with respect to it (parameters frozen, so
    /// no weight gradient is computed or left behind).
    func activationAndGradient(model: Module, input: Tensor, target: CAMTarget) throws -> (Tensor, Tensor, Float) {
        let module = try layerModule(in: model)
        return try Self.withFrozenParameters(of: model) {
            let x = Tensor(input.scalars, shape: input.shape, requiresGrad: true)
            let (activation, value) = try capturing(module, retainingGrad: true) { target.values(model(x)).sum() }
            value.backward()
            guard let gradient = activation.grad else {
                throw CAMError(reason: "the target does not depend on layer '\(layer)'")
            }
            return (activation, gradient, value.scalars[0])
        }
    }

    /// Runs `body` with a forward hook on `module` and returns the module's [N, C, H, W] output beside `body`'s
    /// result (with its gradient kept by a backward pass when `retainingGrad`); the module's hooks are restored.
    func capturing<R>(_ module: Module, retainingGrad: Bool = false, _ body: () throws -> R) throws -> (Tensor, R) {
        var captured: Tensor?
        let saved = module.forwardHooks
        module.forwardHooks.append { _, _, output in
            if retainingGrad { output.retainGrad() }
            captured = output
            return nil
        }
        defer { module.forwardHooks = saved }
        let result = try body()
        guard let activation = captured, activation.rank == 4 else {
            throw CAMError(reason: "layer '\(layer)' gave no [N, C, H, W] output in the forward pass")
        }
        return (activation, result)
    }

    /// Runs `body` with `model`'s parameters not requiring gradients (so a backward pass computes and leaves no
    /// weight gradient), restoring each one's flag afterwards.
    static func withFrozenParameters<T>(of model: Module, _ body: () throws -> T) rethrows -> T {
        let parameters = model.parameters
        let flags = parameters.map(\.requiresGrad)
        parameters.forEach { $0.requiresGrad = false }
        defer { for (p, f) in zip(parameters, flags) { p.requiresGrad = f } }
        return try body()
    }

    /// The module `layer` names in `model`; the error lists the model's layers two levels deep.
    public func layerModule(in model: Module) throws -> Module {
        guard !layer.isEmpty, let module = model.module(at: layer) else {
            let names = model.namedModules().map(\.name).filter { !$0.isEmpty && $0.split(separator: ".").count <= 2 }
            throw CAMError(
                reason:
                    "no layer '\(layer)' in this \(type(of: model)); layers: \(names.prefix(40).joined(separator: ", "))"
            )
        }
        return module
    }

    /// Channel weights (if the method has them) and the ReLU'd map [h, w] from one activation and its gradient.
    static func combine(method: CAMMethod, activation a: Tensor, gradient g: Tensor) -> ([Float], Tensor) {
        let channels = a.shape[1], h = a.shape[2], w = a.shape[3], plane = h * w
        let av = a.scalars, gv = g.scalars
        var weights = [Float](repeating: 0, count: channels)
        var map = [Float](repeating: 0, count: plane)
        for k in 0..<channels {
            let base = k * plane
            switch method {
            case .gradcam:
                var s: Float = 0
                for i in 0..<plane { s += gv[base + i] }
                weights[k] = s / Float(plane)
            case .gradcamPlusPlus:
                // Equation 19 of the paper, as pytorch-grad-cam evaluates it (eps 1e-6, zero where the gradient is).
                var activationSum: Float = 0
                for i in 0..<plane { activationSum += av[base + i] }
                var s: Float = 0
                for i in 0..<plane {
                    let d = gv[base + i]
                    guard d != 0 else { continue }
                    let d2 = d * d
                    let alpha = d2 / (2 * d2 + activationSum * d2 * d + 1e-6)
                    s += max(d, 0) * alpha
                }
                weights[k] = s
            case .xgradcam:
                var activationSum: Float = 0
                for i in 0..<plane { activationSum += av[base + i] }
                var s: Float = 0
                for i in 0..<plane { s += gv[base + i] * av[base + i] / (activationSum + 1e-7) }
                weights[k] = s
            case .layercam:
                for i in 0..<plane { map[i] += max(gv[base + i], 0) * av[base + i] }
            case .hirescam:
                for i in 0..<plane { map[i] += gv[base + i] * av[base + i] }
            case .occlusion, .eigencam, .scorecam, .ablationcam, .guidedGradcam, .lime:
                preconditionFailure("\(method.rawValue) is not made from one gradient")
            }
            if method != .layercam && method != .hirescam {
                let wk = weights[k]
                for i in 0..<plane { map[i] += wk * av[base + i] }
            }
        }
        return (
            method == .layercam || method == .hirescam ? [] : weights, Tensor(map.map { max($0, 0) }, shape: [h, w])
        )
    }

    /// The map upsampled to the input, the `crop` part, min-max scaled: (m - min) / (max - min + 1e-7).
    /// A map of the same size as the input is used as it is; a smaller one is stretched over the input (same
    /// padding, as pytorch-grad-cam), or, for networks with valid convolutions, over the centred part it covers.
    static func heatmap(_ cam: Tensor, inputHeight: Int, inputWidth: Int, crop: PixelWindow) -> ([Float], Bool) {
        let out = upsampled(cam, inputHeight: inputHeight, inputWidth: inputWidth, crop: crop)
        let lo = out.min() ?? 0, hi = out.max() ?? 0
        if !(hi > 0) || !hi.isFinite { return ([Float](repeating: 0, count: out.count), true) }
        return (out.map { ($0 - lo) / (hi - lo + 1e-7) }, false)
    }

    /// The map [h, w] upsampled bilinearly to the input (align_corners false) and cropped to `crop`, unscaled.
    static func upsampled(_ cam: Tensor, inputHeight: Int, inputWidth: Int, crop: PixelWindow) -> [Float] {
        let h = cam.shape[0], w = cam.shape[1]
        func extent(_ m: Int, _ n: Int) -> Int {
            let scale = 1 << max(0, Int((log2(Double(n) / Double(m))).rounded()))
            return abs(m * scale - n) <= scale ? n : min(n, m * scale)
        }
        let eh = extent(h, inputHeight), ew = extent(w, inputWidth)
        let up =
            (eh == h && ew == w)
            ? cam.scalars
            : Functional.resizeBilinear(cam.reshaped([1, 1, h, w]), size: [eh, ew]).scalars
        let oy = (inputHeight - eh) / 2, ox = (inputWidth - ew) / 2
        var out = [Float](repeating: 0, count: crop.width * crop.height)
        for y in 0..<crop.height {
            let sy = crop.y + y - oy
            guard sy >= 0 && sy < eh else { continue }
            for x in 0..<crop.width {
                let sx = crop.x + x - ox
                if sx >= 0 && sx < ew { out[y * crop.width + x] = up[sy * ew + sx] }
            }
        }
        return out
    }

    /// Occlusion sensitivity: each pixel's mean drop of the target over the patches (filled with 0, the
    /// normalised mean) that cover it; the heatmap keeps the drops (ReLU) and scales them to [0, 1].
    func occlusion(model: Module, input: Tensor, target: CAMTarget, crop: PixelWindow) throws -> CAMResult {
        let c = input.shape[1], h = input.shape[2], w = input.shape[3]
        let p = max(1, min(patch ?? max(1, min(crop.width, crop.height) / 8), min(h, w)))
        let step = max(1, stride ?? max(1, p / 2))
        func positions(_ start: Int, _ length: Int, _ size: Int) -> [Int] {
            let last = max(start, min(start + length, size) - p)
            var out = Array(Swift.stride(from: start, to: last, by: step))
            out.append(last)
            return out
        }
        var windows: [(Int, Int)] = []
        for y in positions(crop.y, crop.height, h) {
            for x in positions(crop.x, crop.width, w) { windows.append((y, x)) }
        }
        let base = input.scalars
        let score = withNoGrad { target.values(model(input)).scalars[0] }
        var drop = [Float](repeating: 0, count: h * w), cover = [Float](repeating: 0, count: h * w)
        let batch = 4
        for start in Swift.stride(from: 0, to: windows.count, by: batch) {
            let group = windows[start..<min(start + batch, windows.count)]
            var values = [Float]()
            values.reserveCapacity(group.count * base.count)
            for (y0, x0) in group {
                var v = base
                for ch in 0..<c { for y in y0..<(y0 + p) { for x in x0..<(x0 + p) { v[(ch * h + y) * w + x] = 0 } } }
                values += v
            }
            let scores = withNoGrad { target.values(model(Tensor(values, shape: [group.count, c, h, w]))).scalars }
            for ((y0, x0), s) in zip(group, scores) {
                for y in y0..<(y0 + p) {
                    for x in x0..<(x0 + p) {
                        drop[y * w + x] += score - s
                        cover[y * w + x] += 1
                    }
                }
            }
        }
        let map = zip(drop, cover).map { $1 > 0 ? $0 / $1 : 0 }
        let cam = Tensor(map, shape: [h, w])
        let (heatmap, isZero) = Self.heatmap(
            Tensor(map.map { max($0, 0) }, shape: [h, w]), inputHeight: h,
            inputWidth: w, crop: crop)
        return CAMResult(
            weights: [], cam: cam, heatmap: heatmap, width: crop.width, height: crop.height, score: score,
            isZero: isZero)
    }
}
