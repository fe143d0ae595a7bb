import Foundation
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN

/// The Grad-CAM family and occlusion of a segmenter over tiles, for images of any size in bounded memory (whole
/// slides). The target is the class's logits summed over the image (or a box), split over the tiles as segment
/// blends them: a tile's output pixel counts with its blend weight over the sum of the weights of every tile at
/// that pixel, so the tiles' targets add up to the whole image's. A first pass runs every tile forward and
/// backward once and sums the gradients at the layer, so Grad-CAM's and XGrad-CAM's channel weights are the whole
/// image's and the tiles agree at their seams; a second pass makes each tile's map (HiResCAM, Layer-CAM and
/// occlusion from the tile's own share of the target) and blends the maps as logits are blended. Where one tile
/// covers the image, every step is the whole-image explanation's and so is the map.
public struct TiledCAM {
    /// The methods that run over tiles.
    public static let methods: [CAMMethod] = [.gradcam, .xgradcam, .hirescam, .layercam, .occlusion]

    /// Which output pixels of the class count: those each tile predicts as the class, or a box of the image.
    public enum Region: Sendable {
        case predicted
        case box(PixelWindow)
    }

    public var cam: GradCAM
    public var tiling: TiledInference
    public var region: Region
    public var classIndex: Int
    let rows: TiledInference.AxisPlan, columns: TiledInference.AxisPlan
    let width: Int, height: Int, channels: Int
    /// Per image row and column: the sum of the blend weights of the tiles there.
    let rowNorm: [Float], columnNorm: [Float]
    let rowWeights: [Float], columnWeights: [Float]

    public init(
        cam: GradCAM, tiling: TiledInference, network: any SegmentationNetwork, width: Int, height: Int,
        channels: Int, classIndex: Int, region: Region
    ) throws {
        guard Self.methods.contains(cam.method) else {
            throw CAMError(
                reason: "\(cam.method.rawValue) does not run over tiles; tiled explain takes "
                    + Self.methods.map(\.rawValue).joined(separator: ", "))
        }
        self.cam = cam
        self.tiling = tiling
        self.region = region
        self.classIndex = classIndex
        (self.width, self.height, self.channels) = (width, height, channels)
        (rows, columns) = tiling.plans(width: width, height: height, model: network)
        rowWeights = tiling.weights(rows.outputSize)
        columnWeights = tiling.weights(columns.outputSize)
        func norm(_ plan: TiledInference.AxisPlan, _ weights: [Float], _ n: Int) -> [Float] {
            var out = [Float](repeating: 0, count: n)
            for k in plan.inputStart.indices {
                for t in 0..<plan.outputSize where (0..<n).contains(plan.outputStart(k) + t) {
                    out[plan.outputStart(k) + t] += weights[t]
                }
            }
            return out
        }
        rowNorm = norm(rows, rowWeights, height)
        columnNorm = norm(columns, columnWeights, width)
    }

    /// The tiles of the image.
    public var tileCount: Int { rows.inputStart.count * columns.inputStart.count }

    /// The whole image's target split to tile (`ky`, `kx`): each output pixel's share, given the tile's logits
    /// [classes][rows][columns] (for the predicted region).
    func share(_ ky: Int, _ kx: Int, logits: [Float]?, classes: Int) -> [Float] {
        let oh = rows.outputSize, ow = columns.outputSize, plane = oh * ow
        var out = [Float](repeating: 0, count: plane)
        for ty in 0..<oh {
            let y = rows.outputStart(ky) + ty
            guard y >= 0 && y < height else { continue }
            for tx in 0..<ow {
                let x = columns.outputStart(kx) + tx
                guard x >= 0 && x < width else { continue }
                let i = ty * ow + tx
                switch region {
                case .box(let b):
                    guard x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height else { continue }
                case .predicted:
                    guard let logits else { continue }
                    var best = 0
                    for c in 1..<max(1, classes) where logits[c * plane + i] > logits[best * plane + i] { best = c }
                    guard best == classIndex else { continue }
                }
                out[i] = rowWeights[ty] * columnWeights[tx] / (rowNorm[y] * columnNorm[x])
            }
        }
        return out
    }

    /// The tile's input window from a band of the image read by `read`.
    func window(_ ky: Int, _ kx: Int, band: [Float], region: PixelWindow) -> Tensor {
        let values = MirrorWindow.extract(
            band, region: region, imageWidth: width, imageHeight: height, channels: channels,
            x0: columns.inputStart[kx], y0: rows.inputStart[ky], width: columns.inputSize, height: rows.inputSize)
        return Tensor(values, shape: [1, channels, rows.inputSize, columns.inputSize])
    }

    /// The image rows tile row `ky` reads (mirrored indices folded back into the image).
    func band(_ ky: Int) -> PixelWindow {
        let ys = (rows.inputStart[ky]..<(rows.inputStart[ky] + rows.inputSize)).map { MirrorWindow.index($0, height) }
        let lo = ys.min() ?? 0, hi = (ys.max() ?? 0) + 1
        return PixelWindow(x: 0, y: lo, width: width, height: hi - lo)
    }

    /// The tile's share of the target, nil when the tile holds none of it.
    func target(_ ky: Int, _ kx: Int, input: Tensor, network: any SegmentationNetwork) -> CAMTarget? {
        var logits: [Float]?
        if case .predicted = region { logits = withNoGrad { network(input) }.scalars }
        let share = self.share(ky, kx, logits: logits, classes: network.classes)
        guard share.contains(where: { $0 != 0 }) else { return nil }
        return .region(class: classIndex, region: share)
    }

    /// What the first pass found: the channel weights (Grad-CAM, XGrad-CAM; empty for the others), the target's
    /// value and the region's weight (its pixel count).
    public struct Totals {
        public var weights: [Float]
        public var score: Double
        public var regionPixels: Double
    }

    /// The first pass: every tile forward and backward once (for Grad-CAM and XGrad-CAM; the others only score).
    public func totals(network: any SegmentationNetwork, read: (PixelWindow) throws -> [Float]) throws -> Totals {
        let wasTraining = network.isTraining
        network.eval()
        defer { network.train(wasTraining) }
        var gradientSum = [Double](), productSum = [Double](), activationSum = [Double](), positions = 0
        var score = 0.0, pixels = 0.0
        let needsGradient = cam.method == .gradcam || cam.method == .xgradcam
        for ky in rows.inputStart.indices {
            let region = band(ky), values = try read(region)
            for kx in columns.inputStart.indices {
                let input = window(ky, kx, band: values, region: region)
                guard let target = target(ky, kx, input: input, network: network),
                    case .region(_, let share) = target
                else { continue }
                pixels += share.reduce(0.0) { $0 + Double($1) }
                guard needsGradient else {
                    score += Double(withNoGrad { target.values(network(input)) }.scalars[0])
                    continue
                }
                let (a, g, value) = try cam.activationAndGradient(model: network, input: input, target: target)
                score += Double(value)
                let k = a.shape[1], plane = a.shape[2] * a.shape[3], av = a.scalars, gv = g.scalars
                if gradientSum.isEmpty {
                    gradientSum = [Double](repeating: 0, count: k)
                    productSum = gradientSum
                    activationSum = gradientSum
                }
                positions += plane
                // Each tile's sums in Float, in GradCAM.combine's order (so one tile gives its weights exactly),
                // added up over the tiles in Double.
                for c in 0..<k {
                    var sg: Float = 0, sp: Float = 0, sa: Float = 0
                    for i in (c * plane)..<((c + 1) * plane) {
                        sg += gv[i]
                        sp += gv[i] * av[i]
                        sa += av[i]
                    }
                    gradientSum[c] += Double(sg)
                    productSum[c] += Double(sp)
                    activationSum[c] += Double(sa)
                }
            }
        }
        guard pixels > 0 else {
            throw CAMError(reason: "the target region of class \(classIndex) is empty (no pixel predicted as it)")
        }
        let weights: [Float]
        switch cam.method {
        case .gradcam: weights = gradientSum.map { Float($0) / Float(max(1, positions)) }
        case .xgradcam: weights = zip(productSum, activationSum).map { Float($0) / (Float($1) + 1e-7) }
        default: weights = []
        }
        return Totals(weights: weights, score: score, regionPixels: pixels)
    }

    /// The second pass: the blended map (ReLU'd, unscaled) handed to `emit` chunk by chunk in raster order.
    public func map(
        network: any SegmentationNetwork, totals: Totals, chunk: Int, read: (PixelWindow) throws -> [Float],
        emit: (PixelWindow, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        let wasTraining = network.isTraining
        network.eval()
        defer { network.train(wasTraining) }
        var tiling = self.tiling
        tiling.batch = 1
        let output = PixelWindow(
            x: columns.outputOffset, y: rows.outputOffset, width: columns.outputSize, height: rows.outputSize)
        try tiling.run(
            planes: 1, rows: rows, columns: columns, width: width, height: height, channels: channels, chunk: chunk,
            read: read,
            tiles: { ky, kxs, windows in
                try zip(kxs, windows).map { kx, values in
                    let input = Tensor(values, shape: [1, channels, rows.inputSize, columns.inputSize])
                    return try tileMap(ky, kx, input: input, network: network, totals: totals, output: output)
                }
            }, emit: emit)
    }

    /// One tile's map over its output window.
    func tileMap(
        _ ky: Int, _ kx: Int, input: Tensor, network: any SegmentationNetwork, totals: Totals, output: PixelWindow
    ) throws -> [Float] {
        let zero = [Float](repeating: 0, count: output.width * output.height)
        switch cam.method {
        case .gradcam, .xgradcam:
            let a = try activation(input, network: network)
            let k = a.shape[1], h = a.shape[2], w = a.shape[3], av = a.scalars
            var m = [Float](repeating: 0, count: h * w)
            for c in 0..<k where c < totals.weights.count {
                let wc = totals.weights[c]
                for i in 0..<(h * w) { m[i] += wc * av[c * h * w + i] }
            }
            return GradCAM.upsampled(
                Tensor(m.map { max($0, 0) }, shape: [h, w]), inputHeight: input.shape[2], inputWidth: input.shape[3],
                crop: output)
        case .occlusion:
            guard let target = target(ky, kx, input: input, network: network) else { return zero }
            // Patches are laid over the part of the output inside the image, as over the image when one tile covers it.
            let y0 = max(0, -rows.outputStart(ky)), x0 = max(0, -columns.outputStart(kx))
            let y1 = min(output.height, height - rows.outputStart(ky))
            let x1 = min(output.width, width - columns.outputStart(kx))
            let inside = PixelWindow(x: output.x + x0, y: output.y + y0, width: x1 - x0, height: y1 - y0)
            let r = try cam.occlusion(model: network, input: input, target: target, crop: inside)
            let m = r.cam.scalars, iw = input.shape[3]
            var out = zero
            for y in 0..<output.height {
                for x in 0..<output.width { out[y * output.width + x] = max(0, m[(output.y + y) * iw + output.x + x]) }
            }
            return out
        default:
            guard let target = target(ky, kx, input: input, network: network) else { return zero }
            let (a, g, _) = try cam.activationAndGradient(model: network, input: input, target: target)
            let (_, m) = GradCAM.combine(method: cam.method, activation: a, gradient: g)
            return GradCAM.upsampled(m, inputHeight: input.shape[2], inputWidth: input.shape[3], crop: output)
        }
    }

    /// The layer's output for `input` (no history).
    func activation(_ input: Tensor, network: any SegmentationNetwork) throws -> Tensor {
        try cam.capturing(cam.layerModule(in: network)) { _ = withNoGrad { network(input) } }.0
    }
}
