import Foundation
import TesseraEngine
import TesseraModels

/// Sliding-window inference over an image of any size, as nnU-Net does it: tiles of the network's input size
/// overlap by a fraction, their logits are blended with gaussian (or constant) weights, borders are mirrored, an
/// image smaller than a tile is mirrored outward (never resized), and results leave in bands of finished rows so
/// memory follows the tile, not the image.
public struct TiledInference: Sendable {
    public enum Blend: String, Codable, Sendable, CaseIterable { case gaussian, constant }

    /// Requested input tile edge; rounded up to a size the network takes. `Int.max` means one tile per image.
    public var tile: Int
    /// Fraction of a tile shared with its neighbour, in [0, 1).
    public var overlap: Double
    public var blend: Blend
    /// Test-time augmentation: average over flips (and the rotations by 90 degrees when the tile is square).
    public var tta: Bool

    public init(tile: Int, overlap: Double = 0.5, blend: Blend = .gaussian, tta: Bool = false) {
        precondition(tile > 0 && (0..<1).contains(overlap), "tile must be positive and overlap in [0, 1)")
        self.tile = tile
        self.overlap = overlap
        self.blend = blend
        self.tta = tta
    }

    /// Where the tiles along one axis of `size` pixels go.
    public struct AxisPlan: Equatable, Sendable {
        /// Input windows (image coordinates, may reach outside the image: mirrored there) and the image range
        /// each window's output covers.
        public internal(set) var inputStart: [Int]
        public internal(set) var inputSize: Int
        public internal(set) var outputSize: Int
        /// Offset of the output inside the input window (the border valid convolutions consume).
        public var outputOffset: Int { (inputSize - outputSize) / 2 }
        /// Image coordinate of window `k`'s first output pixel.
        public func outputStart(_ k: Int) -> Int { inputStart[k] + outputOffset }
    }

    /// The whole image (channel planes) in one window mirrored outward to a size the network takes, as `segment`
    /// runs an image one tile covers: the input tensor and the plans of its rows and columns.
    public static func wholeImageWindow(
        _ planes: [Float], width: Int, height: Int, channels: Int,
        model: any SegmentationNetwork
    ) -> (
        input: Tensor, rows: AxisPlan,
        columns: AxisPlan
    ) {
        let one = TiledInference(tile: .max)
        let py = one.plan(size: height, model: model), px = one.plan(size: width, model: model)
        let window = MirrorWindow.extract(
            planes, width: width, height: height, channels: channels,
            x0: px.inputStart[0], y0: py.inputStart[0], width: px.inputSize,
            height: py.inputSize)
        return (Tensor(window, shape: [1, channels, py.inputSize, px.inputSize]), py, px)
    }

    func plan(size n: Int, model: any SegmentationNetwork) -> AxisPlan {
        // One window covering the whole axis, or windows of the requested size if those are smaller.
        let whole = model.inputSize(covering: n)
        let s = tile >= whole ? whole : min(whole, model.validInputSize(atLeast: tile))
        let o = model.outputSize(forInput: s)!
        if s == whole {
            // One window: the image sits where whole-image inference puts it, centred in the output.
            let top = (s - o) / 2 + (o - n) / 2
            return AxisPlan(inputStart: [-top], inputSize: s, outputSize: o)
        }
        let step = max(1.0, Double(o) * (1 - overlap))
        let count = Int((Double(n - o) / step).rounded(.up)) + 1
        let starts = (0..<count).map { k in Int((Double(k) * Double(n - o) / Double(count - 1)).rounded()) - (s - o) / 2
        }
        return AxisPlan(inputStart: starts, inputSize: s, outputSize: o)
    }

    /// Blend weights along one output axis of `length` (nnU-Net: gaussian with sigma = length / 8, peak 1, zeros
    /// raised to the smallest positive value).
    func weights(_ length: Int) -> [Float] {
        guard blend == .gaussian else { return [Float](repeating: 1, count: length) }
        let c = Double(length - 1) / 2, sigma = Double(length) / 8
        let w = (0..<length).map { Float(Foundation.exp(-(Double($0) - c) * (Double($0) - c) / (2 * sigma * sigma))) }
        let floor = w.filter { $0 > 0 }.min() ?? 1
        return w.map { Swift.max($0, floor) }
    }

    /// Blended logits of `model` for a normalised planar image [channels][height][width], handed to `emit` in
    /// bands of finished rows from top to bottom: `emit(firstRow, rowCount, logits)` with logits laid out
    /// [classes][rowCount][width]. The model runs in evaluation mode without history.
    public func run(
        model: any SegmentationNetwork, image: [Float], width: Int, height: Int, channels: Int,
        emit: (Int, Int, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        precondition(image.count == width * height * channels, "image size disagrees with its planes")
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let py = plan(size: height, model: model), px = plan(size: width, model: model)
        let classes = model.classes
        let wy = weights(py.outputSize), wx = weights(px.outputSize)
        // Rows [base, base + py.outputSize) of the image are accumulated; finished rows leave before each new band.
        let bandRows = py.outputSize
        var acc = [Float](repeating: 0, count: classes * bandRows * width)
        var norm = [Float](repeating: 0, count: bandRows * width)
        var base = 0
        for ky in py.inputStart.indices {
            let rowStart = py.outputStart(ky)
            let firstRow = max(0, rowStart)
            if firstRow > base {
                try flush(
                    rows: min(firstRow, height) - base, base: &base, acc: &acc, norm: &norm, classes: classes,
                    bandRows: bandRows, width: width, emit: emit)
            }
            for kx in px.inputStart.indices {
                let window = MirrorWindow.extract(
                    image, width: width, height: height, channels: channels,
                    x0: px.inputStart[kx], y0: py.inputStart[ky],
                    width: px.inputSize, height: py.inputSize)
                let logits = predict(model, window, channels: channels, height: py.inputSize, width: px.inputSize)
                let colStart = px.outputStart(kx)
                let o = px.outputSize
                logits.withUnsafeBufferPointer { lp in
                    for ty in 0..<py.outputSize {
                        let y = rowStart + ty
                        guard y >= 0 && y < height else { continue }
                        let r = y - base
                        for tx in 0..<o {
                            let x = colStart + tx
                            guard x >= 0 && x < width else { continue }
                            let w = wy[ty] * wx[tx]
                            norm[r * width + x] += w
                            for c in 0..<classes {
                                acc[(c * bandRows + r) * width + x] += w * lp[(c * py.outputSize + ty) * o + tx]
                            }
                        }
                    }
                }
            }
        }
        try flush(
            rows: height - base, base: &base, acc: &acc, norm: &norm, classes: classes, bandRows: bandRows,
            width: width, emit: emit)
    }

    /// Emits `rows` finished rows from the top of the band (divided by their weights) and moves the rest up.
    private func flush(
        rows: Int, base: inout Int, acc: inout [Float], norm: inout [Float], classes: Int, bandRows: Int,
        width: Int, emit: (Int, Int, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        guard rows > 0 else { return }
        var out = [Float](repeating: 0, count: classes * rows * width)
        for c in 0..<classes {
            for r in 0..<rows {
                for x in 0..<width {
                    out[(c * rows + r) * width + x] = acc[(c * bandRows + r) * width + x] / norm[r * width + x]
                }
            }
        }
        try out.withUnsafeBufferPointer { try emit(base, rows, $0) }
        // Shift the unfinished rows to the top of the band.
        let keep = bandRows - rows
        for c in 0..<classes {
            let planeStart = c * bandRows * width
            if keep > 0 {
                for i in 0..<(keep * width) { acc[planeStart + i] = acc[planeStart + rows * width + i] }
            }
            for i in (keep * width)..<(bandRows * width) { acc[planeStart + i] = 0 }
        }
        if keep > 0 { for i in 0..<(keep * width) { norm[i] = norm[rows * width + i] } }
        for i in (keep * width)..<(bandRows * width) { norm[i] = 0 }
        base += rows
    }

    /// Logits [classes][h][w] of one window, averaged over the test-time transforms when `tta` is on.
    func predict(_ model: any SegmentationNetwork, _ window: [Float], channels: Int, height h: Int, width w: Int)
        -> [Float]
    {
        let transforms: [Dihedral] =
            !tta ? [.identity] : (h == w ? Dihedral.allCases : [.identity, .flipX, .flipY, .rotate180])
        var sum: [Float] = []
        for t in transforms {
            let (input, th, tw) = t.apply(window, planes: channels, height: h, width: w)
            let y = withNoGrad { model(Tensor(input, shape: [1, channels, th, tw])) }
            let oh = y.shape[2], ow = y.shape[3]
            let back = t.invert(y.contiguous().scalars, planes: model.classes, height: oh, width: ow)
            if sum.isEmpty { sum = back } else { for i in sum.indices { sum[i] += back[i] } }
        }
        if transforms.count > 1 {
            let scale = 1 / Float(transforms.count)
            for i in sum.indices { sum[i] *= scale }
        }
        return sum
    }
}

/// Reads windows of planar images with mirrored borders (reflection without repeating the edge, continued
/// periodically for windows far outside the image).
enum MirrorWindow {
    static func index(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        let j = ((i % period) + period) % period
        return j < n ? j : period - j
    }

    static func extract(
        _ planes: [Float], width: Int, height: Int, channels: Int, x0: Int, y0: Int,
        width w: Int, height h: Int
    ) -> [Float] {
        let xs = (0..<w).map { index(x0 + $0, width) }
        var out = [Float](repeating: 0, count: channels * w * h)
        planes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    for y in 0..<h {
                        let row = src.baseAddress! + (c * height + index(y0 + y, height)) * width
                        let d = dst.baseAddress! + (c * h + y) * w
                        if x0 >= 0 && x0 + w <= width {
                            d.update(from: row + x0, count: w)
                        } else {
                            for x in 0..<w { d[x] = row[xs[x]] }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The eight symmetries of a square (flips and rotations by 90 degrees) on planar [planes][h][w] arrays.
enum Dihedral: CaseIterable {
    case identity, flipX, flipY, rotate180, transpose, rotate90, rotate270, antiTranspose

    /// Source coordinate in the input for output (x, y) of the transformed image of size (tw, th).
    private func source(_ x: Int, _ y: Int, _ w: Int, _ h: Int) -> (Int, Int) {
        switch self {
        case .identity: return (x, y)
        case .flipX: return (w - 1 - x, y)
        case .flipY: return (x, h - 1 - y)
        case .rotate180: return (w - 1 - x, h - 1 - y)
        case .transpose: return (y, x)
        case .rotate90: return (y, h - 1 - x)  // counter-clockwise
        case .rotate270: return (w - 1 - y, x)
        case .antiTranspose: return (w - 1 - y, h - 1 - x)
        }
    }

    var inverse: Dihedral {
        switch self {
        case .rotate90: return .rotate270
        case .rotate270: return .rotate90
        default: return self
        }
    }

    var swapsAxes: Bool { [.transpose, .rotate90, .rotate270, .antiTranspose].contains(self) }

    /// The transformed planes and their height and width.
    func apply(_ a: [Float], planes: Int, height h: Int, width w: Int) -> ([Float], Int, Int) {
        if self == .identity { return (a, h, w) }
        let th = swapsAxes ? w : h, tw = swapsAxes ? h : w
        var out = [Float](repeating: 0, count: a.count)
        for p in 0..<planes {
            for y in 0..<th {
                for x in 0..<tw {
                    let (sx, sy) = source(x, y, w, h)
                    out[(p * th + y) * tw + x] = a[(p * h + sy) * w + sx]
                }
            }
        }
        return (out, th, tw)
    }

    /// Undoes `apply` on an output of height h and width w (in transformed orientation).
    func invert(_ a: [Float], planes: Int, height h: Int, width w: Int) -> [Float] {
        inverse.apply(a, planes: planes, height: h, width: w).0
    }
}
