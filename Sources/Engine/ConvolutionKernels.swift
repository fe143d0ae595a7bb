import CKernels
import Foundation

/// Per-channel affine and activation applied to a convolution's output tile while it is in cache.
public struct ConvEpilogue {
    public var scale: [Float]?
    public var shift: [Float]?
    public var relu: Bool
    public init(scale: [Float]? = nil, shift: [Float]? = nil, relu: Bool = false) {
        self.scale = scale
        self.shift = shift
        self.relu = relu
    }
    var isIdentity: Bool { scale == nil && shift == nil && !relu }
}

/// The tiled convolution core: every pass is an implicit GEMM, over row bands (stride 1, 2-d) or bounded im2col
/// tiles (any geometry); which route a shape takes is measured on the running machine (`ConvPlanCache`).
enum ConvolutionKernels {
    /// Columns of output computed per task: a multiple of the GEMM's B block.
    static var tileColumns: Int { GEMM.nc * 2 }

    /// out[n, g*M + m, cols] = sum_k A_g[m][k] * im2col(source[n, g*C ..< (g+1)*C])[k][cols].
    ///
    /// `weights` is [groups][M][C * kernelVolume] contiguous; `source` is [N, groups*C, sourceSize] contiguous.
    /// - Parameter swappedWeights: `weights` is stored [groups][C][M][kernelVolume] and read with C and M swapped.
    static func implicitGEMM(
        geometry g: ConvGeometry, source: UnsafePointer<Float>, sourceChannels c: Int,
        sourceSize: [Int], columns: [Int], transposed: Bool,
        weights: UnsafePointer<Float>, swappedWeights: Bool = false, rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let groups = g.groups
        let kv = g.kernelVolume
        let k = c * kv
        // Packed once, and only for the routes that read packed weights (col2im packs its own transposed blocks).
        var packedWeights: [GEMM.PackedA]?
        func packed() -> [GEMM.PackedA] {
            if let packedWeights { return packedWeights }
            let p = (0..<groups).map { gi in
                swappedWeights
                    ? GEMM.PackedA(m: m, k: k, swapped: weights + gi * m * k, rs: kv, inner: kv, outerStride: m * kv)
                    : GEMM.PackedA(m: m, k: k, src: weights + gi * m * k, rs: k, cs: 1)
            }
            packedWeights = p
            return p
        }
        let band = RowBandPlan(
            geometry: g, channels: c, sourceSize: sourceSize, columns: columns,
            transposed: transposed)
        let key = planKey(
            .product, g, channels: c, rows: m, sourceSize: sourceSize, columns: columns,
            transposed: transposed, swapped: swappedWeights)
        let winograd = WinogradPlan(geometry: g, sourceSize: sourceSize, columns: columns, transposed: transposed)
            .flatMap { WinogradPlan.coversProduct(rows: m, channels: c, groups: groups) ? $0 : nil }
        let candidates = ConvRoute.productRoutes.filter {
            $0 == .im2col || ($0 == .rowBand && band != nil) || ($0 == .col2im && transposed && swappedWeights)
                || ($0 == .winograd && winograd != nil)
                || ($0 == .batchedGEMM && g.batch > 1 && groups == 1
                    && g.isPointwise(sourceSize: sourceSize, columns: columns))
        }
        ConvPlanCache.shared.run(key, candidates: candidates) { route in
            if route == .batchedGEMM {
                batchedPointwise(
                    batch: g.batch, source: source, channels: c, pixels: columns.reduce(1, *),
                    weights: weights, swapped: swappedWeights, rows: m, output: output, epilogue: epilogue)
                return
            }
            let input = ConvInput(source, channels: groups * c, plane: sourceSize.reduce(1, *))
            if route == .winograd, let winograd {
                winograd.forward(
                    batch: g.batch, groups: groups, source: input, channels: c, weights: weights,
                    swapped: swappedWeights, rows: m, output: output, epilogue: epilogue)
            } else if route == .rowBand, let band {
                band.forward(
                    batch: g.batch, groups: groups, source: input, weights: packed(), rows: m,
                    output: output, epilogue: epilogue)
            } else if route == .col2im {
                col2imProduct(
                    geometry: g, source: source, sourceChannels: c, sourceSize: sourceSize,
                    columns: columns, weights: weights, rows: m, output: output, epilogue: epilogue)
            } else {
                im2colProduct(
                    geometry: g, source: source, sourceChannels: c, sourceSize: sourceSize, columns: columns,
                    transposed: transposed, weights: packed(), rows: m, output: output, epilogue: epilogue)
            }
        }
    }

    /// out[n, m] = conv(concat(parts along channels)[n], weights) for a 2-d stride-1 product (groups 1) without
    /// the concatenation, through the row-band or Winograd route (measured between them as any product); false,
    /// with nothing written, when neither applies to the geometry.
    static func splitProduct(
        geometry g: ConvGeometry, parts: ConvInput, weights: UnsafePointer<Float>, rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) -> Bool {
        let c = parts.channels
        let band = RowBandPlan(geometry: g, channels: c, sourceSize: g.input, columns: g.output, transposed: false)
        let winograd = WinogradPlan(geometry: g, sourceSize: g.input, columns: g.output, transposed: false)
            .flatMap { WinogradPlan.coversProduct(rows: m, channels: c, groups: 1) ? $0 : nil }
        let candidates = ConvRoute.productRoutes.filter {
            ($0 == .rowBand && band != nil) || ($0 == .winograd && winograd != nil)
        }
        guard g.groups == 1, !candidates.isEmpty else { return false }
        // A forced route this split product cannot take: the concatenated path, which can, takes it instead.
        if let forced = ConvRoute.forced ?? ConvPlanCache.shared.forcedByEnvironment, !candidates.contains(forced) {
            return false
        }
        let key =
            planKey(
                .product, g, channels: c, rows: m, sourceSize: g.input, columns: g.output,
                transposed: false) + " split"
        ConvPlanCache.shared.run(key, candidates: candidates) { route in
            if route == .winograd, let winograd {
                winograd.forward(
                    batch: g.batch, groups: 1, source: parts, channels: c, weights: weights,
                    swapped: false, rows: m, output: output, epilogue: epilogue)
            } else if let band {
                let packed = GEMM.PackedA(m: m, k: c * g.kernelVolume, src: weights, rs: c * g.kernelVolume, cs: 1)
                band.forward(
                    batch: g.batch, groups: 1, source: parts, weights: [packed], rows: m, output: output,
                    epilogue: epilogue)
            }
        }
        return true
    }

    /// out[n][m][p] = sum_c W[m][c] x[n][c][p] for a 1x1 stride-1 unpadded layer as one GEMM over all N x P pixels:
    /// the planes are gathered into X[c][n P + p], multiplied, and scattered back after the epilogue.
    static func batchedPointwise(
        batch: Int, source: UnsafePointer<Float>, channels c: Int, pixels p: Int,
        weights: UnsafePointer<Float>, swapped: Bool, rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let np = batch * p
        let x = TensorStorage(count: c * np, zeroed: false), y = TensorStorage(count: m * np, zeroed: false)
        Parallel.forRanges(c, grain: max(1, (1 << 15) / max(np, 1))) { range in
            for ci in range {
                for n in 0..<batch { (x.base + ci * np + n * p).update(from: source + (n * c + ci) * p, count: p) }
            }
        }
        // Swapped weights are stored [C][M]: A[m][c] = weights[c * M + m].
        GEMM.matmul(
            m: m, n: np, k: c, a: weights, aRowStride: swapped ? 1 : c, aColStride: swapped ? m : 1,
            b: x.base, bRowStride: np, bColStride: 1, c: y.base, ldc: np)
        Parallel.forRanges(m, grain: max(1, (1 << 15) / max(np, 1))) { range in
            for mi in range {
                if !epilogue.isIdentity {
                    withOptionalSlice(epilogue.scale, mi) { sp in
                        withOptionalSlice(epilogue.shift, mi) { tp in
                            tk_epilogue(y.base + mi * np, np, 1, Int32(np), sp, tp, epilogue.relu ? 1 : 0)
                        }
                    }
                }
                for n in 0..<batch { (output + (n * m + mi) * p).update(from: y.base + mi * np + n * p, count: p) }
            }
        }
    }

    /// The shape of one pass as the plan cache keys it: everything that changes which route is fastest.
    static func planKey(
        _ pass: ConvPass, _ g: ConvGeometry, channels c: Int, rows m: Int, sourceSize: [Int],
        columns: [Int], transposed: Bool, swapped: Bool = false
    ) -> String {
        func dims(_ v: [Int]) -> String { v.map(String.init).joined(separator: "x") }
        return "\(pass.rawValue) n\(g.batch) g\(g.groups) c\(c) m\(m) src \(dims(sourceSize)) cols \(dims(columns))"
            + " k \(dims(g.kernel)) s \(dims(g.stride)) p \(dims(g.padFront)) d \(dims(g.dilation))"
            + (transposed ? " transposed" : "") + (swapped ? " swapped" : "")
    }

    /// The transposed product (swapped weights [groups][C][M][taps]) as cols[(m, tap)][s] = sum_c W[c][m][tap] *
    /// source[c][s] over chunks of source pixels s, each chunk scattered into the output at once (col2im).
    /// Workers own disjoint blocks of output channels, so no two write the same float.
    static func col2imProduct(
        geometry g: ConvGeometry, source: UnsafePointer<Float>, sourceChannels c: Int,
        sourceSize: [Int], columns: [Int], weights: UnsafePointer<Float>, rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let groups = g.groups, taps = g.kernelVolume
        let s = sourceSize.reduce(1, *), p = columns.reduce(1, *)
        let images = g.batch * groups
        let blocksWanted = max(1, min(m, (2 * Parallel.threadCount + images - 1) / images))
        let mb = (m + blocksWanted - 1) / blocksWanted
        let blocks = (m + mb - 1) / mb
        let packed: [[GEMM.PackedA]] = (0..<groups).map { gi in
            (0..<blocks).map { b in
                let m0 = b * mb
                return GEMM.PackedA(
                    m: min(mb, m - m0) * taps, k: c, src: weights + gi * c * m * taps + m0 * taps,
                    rs: 1, cs: m * taps)
            }
        }
        // Source pixels per chunk: the chunk's columns (mb * taps rows) stay within about 1 MB.
        let nr = GEMM.nr
        let chunk = min(s, max(nr, (1 << 18) / max(1, mb * taps) / nr * nr))
        Parallel.workers(images * blocks) { _, mine in
            let scratch = ScratchBuffer(count: GEMM.scratchCount)
            let cols = ScratchBuffer(count: mb * taps * chunk)
            for t in mine {
                let b = t % blocks, gi = (t / blocks) % groups, n = t / (blocks * groups)
                let m0 = b * mb, rowsHere = min(mb, m - m0)
                let src = source + (n * groups + gi) * c * s
                let out = output + ((n * groups + gi) * m + m0) * p
                out.initialize(repeating: 0, count: rowsHere * p)
                var geom = g.im2col(
                    source: src, channels: c, sourceSize: sourceSize, columns: columns, transposed: true)
                var s0 = 0
                while s0 < s {
                    let ns = min(chunk, s - s0)
                    GEMM.multiply(
                        packed[gi][b], n: ns, c: cols.pointer, ldc: ns, accumulate: false,
                        scratch: scratch.pointer
                    ) { k0, kc, j0, nc, nr, dst in
                        tk_pack_b(src + k0 * s + s0 + j0, s, 1, Int32(kc), Int32(nc), nr, dst)
                    }
                    tk_col2im_add(&geom, Int32(rowsHere), cols.pointer, ns, s0, Int32(ns), out)
                    s0 += ns
                }
                if !epilogue.isIdentity {
                    withOptionalSlice(epilogue.scale, gi * m + m0) { sp in
                        withOptionalSlice(epilogue.shift, gi * m + m0) { tp in
                            tk_epilogue(out, p, Int32(rowsHere), Int32(p), sp, tp, epilogue.relu ? 1 : 0)
                        }
                    }
                }
            }
        }
    }

    /// The product over bounded im2col tiles: any geometry.
    static func im2colProduct(
        geometry g: ConvGeometry, source: UnsafePointer<Float>, sourceChannels c: Int,
        sourceSize: [Int], columns: [Int], transposed: Bool, weights packed: [GEMM.PackedA],
        rows m: Int, output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let groups = g.groups
        let p = columns.reduce(1, *)
        let sourceVolume = sourceSize.reduce(1, *)
        let tile = tileColumns
        let tilesPerImage = (p + tile - 1) / tile
        let tasks = g.batch * groups * tilesPerImage
        let scale = epilogue.scale, shift = epilogue.shift
        Parallel.workers(tasks) { _, mine in
            let scratch = ScratchBuffer(count: GEMM.scratchCount)
            for t in mine {
                let tileIndex = t % tilesPerImage
                let gi = (t / tilesPerImage) % groups
                let n = t / (tilesPerImage * groups)
                let col0 = tileIndex * tile
                let cols = min(tile, p - col0)
                let src = source + (n * groups + gi) * c * sourceVolume
                var geom = g.im2col(
                    source: src, channels: c, sourceSize: sourceSize, columns: columns,
                    transposed: transposed)
                let out = output + (n * groups + gi) * m * p + col0
                GEMM.multiply(packed[gi], n: cols, c: out, ldc: p, accumulate: false, scratch: scratch.pointer) {
                    k0, kc, j0, nc, nr, dst in
                    tk_im2col_packed(&geom, k0, Int32(kc), col0 + j0, Int32(nc), nr, dst)
                }
                if !epilogue.isIdentity {
                    let rowBase = gi * m
                    withOptionalSlice(scale, rowBase) { sp in
                        withOptionalSlice(shift, rowBase) { tp in
                            tk_epilogue(out, p, Int32(m), Int32(cols), sp, tp, epilogue.relu ? 1 : 0)
                        }
                    }
                }
            }
        }
    }

    /// dW[g*M + m][(c, k)] = sum_n sum_cols a[n, g*M + m, cols] * im2col(source[n, g*C...])[(c, k)][cols].
    ///
    /// Reduction over pixels is split across workers, each with its own partial sum.
    static func weightGradient(
        geometry g: ConvGeometry, a: UnsafePointer<Float>, rows m: Int,
        source: UnsafePointer<Float>, sourceChannels c: Int, sourceSize: [Int],
        columns: [Int], into result: UnsafeMutablePointer<Float>
    ) {
        let band = RowBandPlan(geometry: g, channels: c, sourceSize: sourceSize, columns: columns, transposed: false)
        let key = planKey(
            .weightGradient, g, channels: c, rows: m, sourceSize: sourceSize, columns: columns,
            transposed: false)
        let winograd = WinogradPlan(geometry: g, sourceSize: sourceSize, columns: columns, transposed: false)
            .flatMap { WinogradPlan.coversWeightGradient(rows: m, channels: c, groups: g.groups) ? $0 : nil }
        let candidates = ConvRoute.weightGradientRoutes.filter {
            $0 == .im2col || (band != nil && ($0 == .rowBandDot || $0 == .rowBandPacked))
                || ($0 == .winograd && winograd != nil)
        }
        ConvPlanCache.shared.run(key, candidates: candidates) { route in
            if route == .winograd, let winograd {
                winograd.weightGradient(
                    batch: g.batch, groups: g.groups, a: a, rows: m, source: source, channels: c,
                    into: result)
            } else if let band, route == .rowBandDot || route == .rowBandPacked {
                band.weightGradient(
                    batch: g.batch, groups: g.groups, a: a, rows: m, source: source,
                    packed: route == .rowBandPacked, into: result)
            } else {
                im2colWeightGradient(
                    geometry: g, a: a, rows: m, source: source, sourceChannels: c,
                    sourceSize: sourceSize, columns: columns, into: result)
            }
        }
    }

    /// The weight gradient over im2col rows of the source, transposed into packed panels: any geometry.
    static func im2colWeightGradient(
        geometry g: ConvGeometry, a: UnsafePointer<Float>, rows m: Int,
        source: UnsafePointer<Float>, sourceChannels c: Int, sourceSize: [Int],
        columns: [Int], into result: UnsafeMutablePointer<Float>
    ) {
        let groups = g.groups
        let kg = c * g.kernelVolume
        let p = columns.reduce(1, *)
        let sourceVolume = sourceSize.reduce(1, *)
        let block = GEMM.kc
        let blocksPerImage = (p + block - 1) / block
        let tasks = g.batch * groups * blocksPerImage
        let nc = GEMM.nc, nr = GEMM.nr, mr = GEMM.mr
        let pointwise = g.isPointwise(sourceSize: sourceSize, columns: columns)
        Parallel.accumulating(tasks, count: groups * m * kg, into: result) { mine, acc in
            let aPack = ScratchBuffer(count: ((m + mr - 1) / mr) * mr * block)
            let colRows = ScratchBuffer(count: pointwise ? 1 : nc * block)
            let bPack = ScratchBuffer(count: ((nc + nr - 1) / nr) * nr * block)
            let kern = GEMM.info.kernel!
            var rowOffsets = [Int](repeating: 0, count: nc)
            for t in mine {
                let bi = t % blocksPerImage
                let gi = (t / blocksPerImage) % groups
                let n = t / (blocksPerImage * groups)
                let p0 = bi * block, kc = min(block, p - p0)
                let aRows = a + (n * groups + gi) * m * p + p0
                tk_pack_a(aRows, p, 1, Int32(m), Int32(kc), Int32(mr), aPack.pointer)
                let imageSource = source + (n * groups + gi) * c * sourceVolume
                var geom = g.im2col(
                    source: imageSource, channels: c,
                    sourceSize: sourceSize, columns: columns, transposed: false)
                var jc = 0
                while jc < kg {
                    let ncb = min(nc, kg - jc)
                    // B[p][j] = im2col row j at pixel p: a transpose, done with 8 x 8 blocks. A pointwise layer's
                    // im2col rows are the source planes themselves, read in place (the copy cost 1x1 64 -> 256 at
                    // 56 x 56 x 8 about 10% of its weight gradient).
                    if pointwise {
                        for j in 0..<ncb { rowOffsets[j] = (jc + j) * sourceVolume }
                        rowOffsets.withUnsafeBufferPointer { ro in
                            tk_pack_transposed(
                                imageSource, ro.baseAddress!, Int32(ncb), p0, Int32(kc), Int32(nr),
                                bPack.pointer)
                        }
                    } else {
                        tk_im2col_rows(&geom, jc, Int32(ncb), p0, Int32(kc), colRows.pointer, kc)
                        for j in 0..<ncb { rowOffsets[j] = j * kc }
                        rowOffsets.withUnsafeBufferPointer { ro in
                            tk_pack_transposed(
                                colRows.pointer, ro.baseAddress!, Int32(ncb), 0, Int32(kc), Int32(nr),
                                bPack.pointer)
                        }
                    }
                    let cBase = acc + gi * m * kg + jc
                    GEMM.wide.offsets.withUnsafeBufferPointer { offs in
                        for jr in 0..<((ncb + nr - 1) / nr) {
                            let cols = min(nr, ncb - jr * nr)
                            for ir in 0..<((m + mr - 1) / mr) {
                                kern(
                                    kc, aPack.pointer + ir * kc * mr, bPack.pointer + jr * kc * nr, offs.baseAddress!,
                                    cBase + ir * mr * kg + jr * nr, kg, Int32(min(mr, m - ir * mr)), Int32(cols), 1)
                            }
                        }
                    }
                    jc += nc
                }
            }
        }
    }

    static func withOptionalSlice(
        _ values: [Float]?, _ start: Int,
        _ body: (UnsafePointer<Float>?) -> Void
    ) {
        guard let values else { body(nil); return }
        values.withUnsafeBufferPointer { body($0.baseAddress! + start) }
    }
}
