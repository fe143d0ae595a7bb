import Foundation
import TesseraData
import TesseraEngine
import TesseraModels

/// Sliding-window inference over an image of any size, as nnU-Net does it: tiles of the network's input size
/// overlap by a fraction, their logits are blended with gaussian (or constant) weights, borders are mirrored, an
/// image smaller than a tile is mirrored outward (never resized), and results leave in chunks read and blended on
/// their own, so memory follows the chunk and the tile, not the image.
public struct TiledInference: Sendable {
    public enum Blend: String, Codable, Sendable, CaseIterable { case gaussian, constant }

    /// Requested input tile edge; rounded up to a size the network takes. `Int.max` means one tile per image.
    public var tile: Int
    /// Fraction of a tile shared with its neighbour, in [0, 1).
    public var overlap: Double
    public var blend: Blend
    /// Test-time augmentation: average over flips (and the rotations by 90 degrees when the tile is square).
    public var tta: Bool
    /// Tiles of one tile row that go through the network together; nil: as many as make 2^18 input pixels, at
    /// most 16. Measured on segment of a 4096^2 slide with the quickstart U-Net (width 16, 2 cores, BENCHMARKS.md):
    /// 128-pixel tiles 33.4 s one at a time, 25.5 s by 4, 23.5 s by 16; 256-pixel tiles 21.4 s alone, 19.2 s by 4;
    /// 512-pixel tiles 10.0 s alone, 11.5 s by 2 (overlap 0.25). Peak memory grows with the batch.
    public var batch: Int?

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
            planes, region: PixelWindow(x: 0, y: 0, width: width, height: height), imageWidth: width,
            imageHeight: height, channels: channels, x0: px.inputStart[0], y0: py.inputStart[0],
            width: px.inputSize, height: py.inputSize)
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
    public func weights(_ length: Int) -> [Float] {
        guard blend == .gaussian else { return [Float](repeating: 1, count: length) }
        let c = Double(length - 1) / 2, sigma = Double(length) / 8
        let w = (0..<length).map { Float(Foundation.exp(-(Double($0) - c) * (Double($0) - c) / (2 * sigma * sigma))) }
        let floor = w.filter { $0 > 0 }.min() ?? 1
        return w.map { Swift.max($0, floor) }
    }

    /// Blended logits of `model` for a normalised planar image [channels][height][width] held in memory, handed to
    /// `emit` chunk by chunk (see the reading variant).
    public func run(
        model: any SegmentationNetwork, image: [Float], width: Int, height: Int, channels: Int, chunk: Int = .max,
        emit: (PixelWindow, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        precondition(image.count == width * height * channels, "image size disagrees with its planes")
        try run(
            model: model, width: width, height: height, channels: channels, chunk: chunk,
            read: { w in
                w.width == width && w.height == height
                    ? image
                    : MirrorWindow.crop(image, width: width, height: height, channels: channels, w)
            }, emit: emit)
    }

    /// Blended logits of `model` over a `width` x `height` image of which `read` gives normalised planar windows
    /// [channels][h][w] on demand, handed to `emit(window, logits)` chunk by chunk in raster order: chunks are
    /// `chunk` pixels on a side (the last ones of a row or column smaller), logits laid out [classes][h][w].
    ///
    /// Memory follows the chunk, never the image: a chunk reads the input its tiles cover and accumulates its own
    /// output only. A tile shared with the chunk to the right is run once and kept for it; one shared with the
    /// chunk below is run again there (keeping it would take a row of tiles the image's width). Every output
    /// pixel sums the same tiles in the same order (tile rows, then tiles) whatever the chunk size, so chunked
    /// and whole-image results are bit-identical. Chunk rows before `firstChunkRow` are skipped (a resumed run).
    /// The model runs in evaluation mode without history.
    public func run(
        model: any SegmentationNetwork, width: Int, height: Int, channels: Int, chunk: Int = .max,
        firstChunkRow: Int = 0, read: (PixelWindow) throws -> [Float],
        emit: (PixelWindow, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let py = plan(size: height, model: model), px = plan(size: width, model: model)
        try run(
            planes: model.classes, rows: py, columns: px, width: width, height: height, channels: channels,
            chunk: chunk, firstChunkRow: firstChunkRow, read: read,
            tiles: { _, _, windows in
                predict(model, windows, channels: channels, height: py.inputSize, width: px.inputSize)
            }, emit: emit)
    }

    /// The rows and columns of tiles over a `width` x `height` image for `model`.
    public func plans(width: Int, height: Int, model: any SegmentationNetwork) -> (rows: AxisPlan, columns: AxisPlan) {
        (plan(size: height, model: model), plan(size: width, model: model))
    }

    /// The blend weight of each output pixel of a tile, [rows][columns] (the product of the axes' weights).
    public func tileWeights(rows: AxisPlan, columns: AxisPlan) -> [Float] {
        let wy = weights(rows.outputSize), wx = weights(columns.outputSize)
        return wy.flatMap { y in wx.map { y * $0 } }
    }

    /// Blended results of any tile function: `tiles(row, columns, windows)` maps a batch of input windows (tile
    /// row `row`, tile columns `columns`; planar, [channels][rows.inputSize][columns.inputSize]) to `planes`
    /// planes per window over the tile's output ([planes][rows.outputSize][columns.outputSize]); chunks, order, blending and memory as the model's run above (which is this
    /// with the network's logits). An attribution map over tiles is blended with this same machinery.
    public func run(
        planes classes: Int, rows py: AxisPlan, columns px: AxisPlan, width: Int, height: Int, channels: Int,
        chunk: Int = .max, firstChunkRow: Int = 0, read: (PixelWindow) throws -> [Float],
        tiles predict: (Int, [Int], [[Float]]) throws -> [[Float]],
        emit: (PixelWindow, UnsafeBufferPointer<Float>) throws -> Void
    ) rethrows {
        let wy = weights(py.outputSize), wx = weights(px.outputSize)
        let chunkHeight = min(max(1, chunk), height), chunkWidth = min(max(1, chunk), width)
        let batch = max(1, self.batch ?? min(16, (1 << 18) / (py.inputSize * px.inputSize)))
        /// The tiles of `plan` whose output meets [lo, hi) of the image.
        func tiles(_ plan: AxisPlan, _ lo: Int, _ hi: Int) -> [Int] {
            plan.inputStart.indices.filter { plan.outputStart($0) < hi && plan.outputStart($0) + plan.outputSize > lo }
        }
        /// The image range the mirrored input windows of `ks` read.
        func source(_ plan: AxisPlan, _ ks: [Int], _ n: Int) -> Range<Int> {
            var lo = Int.max, hi = Int.min
            for k in ks {
                for i in plan.inputStart[k]..<(plan.inputStart[k] + plan.inputSize) {
                    let j = MirrorWindow.index(i, n)
                    lo = min(lo, j)
                    hi = max(hi, j + 1)
                }
            }
            return lo..<hi
        }
        for y0 in stride(from: firstChunkRow * chunkHeight, to: height, by: chunkHeight) {
            let y1 = min(height, y0 + chunkHeight), kys = tiles(py, y0, y1), rows = source(py, kys, height)
            var kept: [Int: TileLogits] = [:]
            for x0 in stride(from: 0, to: width, by: chunkWidth) {
                let x1 = min(width, x0 + chunkWidth), h = y1 - y0, w = x1 - x0
                var acc = [Float](repeating: 0, count: classes * h * w)
                var norm = [Float](repeating: 0, count: h * w)
                var keep: [Int: TileLogits] = [:]
                // The chunk's input lives only while its tiles run.
                try {
                    let kxs = tiles(px, x0, x1), cols = source(px, kxs, width)
                    let region = PixelWindow(
                        x: cols.lowerBound, y: rows.lowerBound, width: cols.count, height: rows.count)
                    let planes = try read(region)
                    for ky in kys {
                        let rowStart = py.outputStart(ky)
                        // Tiles not kept from the chunk to the left go through the network in batches, a batch
                        // when its first tile is reached; each tile's logits are dropped once blended.
                        let fresh = kxs.filter { kept[ky * px.inputStart.count + $0] == nil }
                        var next = 0
                        var computed: [Int: TileLogits] = [:]
                        for kx in kxs {
                            let key = ky * px.inputStart.count + kx
                            if kept[key] == nil && computed[kx] == nil && next < fresh.count {
                                let group = fresh[next..<min(fresh.count, next + batch)]
                                next += group.count
                                let windows = group.map { gx in
                                    MirrorWindow.extract(
                                        planes, region: region, imageWidth: width, imageHeight: height,
                                        channels: channels, x0: px.inputStart[gx], y0: py.inputStart[ky],
                                        width: px.inputSize, height: py.inputSize)
                                }
                                let out = try predict(ky, Array(group), windows)
                                for (gx, logits) in zip(group, out) {
                                    computed[gx] = TileLogits(first: 0, width: px.outputSize, values: logits)
                                }
                            }
                            guard let tile = kept.removeValue(forKey: key) ?? computed.removeValue(forKey: kx) else {
                                continue
                            }
                            let colStart = px.outputStart(kx), o = px.outputSize, oy = py.outputSize
                            if colStart + o > x1 {
                                keep[key] = tile.columns(from: x1 - colStart, classes: classes, rows: oy)
                            }
                            let ta = max(y0, rowStart) - rowStart, tb = min(y1, rowStart + oy) - rowStart
                            let sa = max(x0, colStart) - colStart, sb = min(x1, colStart + o) - colStart
                            tile.values.withUnsafeBufferPointer { lp in
                                for ty in ta..<tb {
                                    let r = rowStart + ty - y0
                                    for tx in sa..<sb {
                                        let x = colStart + tx - x0
                                        let wgt = wy[ty] * wx[tx], v = (ty * tile.width) + tx - tile.first
                                        norm[r * w + x] += wgt
                                        for c in 0..<classes {
                                            acc[(c * h + r) * w + x] += wgt * lp[c * oy * tile.width + v]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }()
                kept = keep
                for c in 0..<classes {
                    for i in 0..<(h * w) { acc[c * h * w + i] /= norm[i] }
                }
                try acc.withUnsafeBufferPointer { try emit(PixelWindow(x: x0, y: y0, width: w, height: h), $0) }
            }
        }
    }

    /// A tile's logits [classes][rows][width], all its columns or those from `first` on (the part a chunk keeps
    /// for the chunk to its right).
    struct TileLogits {
        var first: Int
        var width: Int
        var values: [Float]

        /// The columns from tile column `from` on.
        func columns(from: Int, classes: Int, rows: Int) -> TileLogits {
            let keep = first + width - from
            var out = [Float](repeating: 0, count: classes * rows * keep)
            for p in 0..<(classes * rows) {
                for x in 0..<keep { out[p * keep + x] = values[p * width + from - first + x] }
            }
            return TileLogits(first: from, width: keep, values: out)
        }
    }

    /// Logits [classes][h][w] of each window; without test-time augmentation the windows go through the network
    /// as one batch.
    func predict(_ model: any SegmentationNetwork, _ windows: [[Float]], channels: Int, height h: Int, width w: Int)
        -> [[Float]]
    {
        guard !tta, windows.count > 1 else {
            return windows.map { predict(model, $0, channels: channels, height: h, width: w) }
        }
        let y = withNoGrad { model(Tensor(windows.flatMap { $0 }, shape: [windows.count, channels, h, w])) }
        let all = y.contiguous().scalars, n = all.count / windows.count
        return (0..<windows.count).map { Array(all[($0 * n)..<(($0 + 1) * n)]) }
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
public enum MirrorWindow {
    /// The image index that index `i` of an axis of `n` pixels mirrors to.
    public static func index(_ i: Int, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        let j = ((i % period) + period) % period
        return j < n ? j : period - j
    }

    /// The `w` x `h` window at (x0, y0) of a planar image, mirrored where it leaves the image, from `planes` that
    /// hold only `region` of the `imageWidth` x `imageHeight` image (every mirrored index the window reads must
    /// fall inside it).
    public static func extract(
        _ planes: [Float], region: PixelWindow, imageWidth: Int, imageHeight: Int, channels: Int, x0: Int, y0: Int,
        width w: Int, height h: Int
    ) -> [Float] {
        let rw = region.width, rh = region.height
        let xs = (0..<w).map { index(x0 + $0, imageWidth) - region.x }
        var out = [Float](repeating: 0, count: channels * w * h)
        let inside = x0 >= 0 && x0 + w <= imageWidth
        planes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<channels {
                    for y in 0..<h {
                        let row = src.baseAddress! + (c * rh + index(y0 + y, imageHeight) - region.y) * rw
                        let d = dst.baseAddress! + (c * h + y) * w
                        if inside {
                            d.update(from: row + x0 - region.x, count: w)
                        } else {
                            for x in 0..<w { d[x] = row[xs[x]] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The window `w` (inside the image) of planar `planes`.
    static func crop(_ planes: [Float], width: Int, height: Int, channels: Int, _ w: PixelWindow) -> [Float] {
        var out = [Float](repeating: 0, count: channels * w.width * w.height)
        for c in 0..<channels {
            for y in 0..<w.height {
                let from = (c * height + w.y + y) * width + w.x, to = (c * w.height + y) * w.width
                for x in 0..<w.width { out[to + x] = planes[from + x] }
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
