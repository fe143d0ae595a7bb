import CKernels
import Foundation

/// Stride-1 3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3): each 4x4 output tile costs 36
/// multiply-adds per input channel instead of 144.
///
/// Per block of `tileBlock` tiles of one image, the input tiles of every channel are transformed into
/// V[xi][c][tile] (36 points xi), the 36 products M_xi = U_xi · V_xi (U: the transformed filter, [xi][m][c]) run
/// through the packed micro-kernel reading V in place, and the output transform writes each 4x4 tile with the
/// epilogue. Output channels are done in chunks so the block of M stays in L2 beside V. Filters are transformed on
/// each call, over all cores: about 1% of a W=64 U-Net forward's samples (M x C x ~300 flops against M x C x 36 x
/// tiles x 2 of products); keeping them from call to call would hold 4x the weights (500 MB for W=64).
/// The weight gradient runs the same way through the transposition principle (`weightGradient`).
///
/// Its rounding differs from a direct convolution's: against float64, the largest error relative to the output's
/// largest magnitude is about 5e-6 on U-Net-like layers, 2.8e-7 for the direct route (WinogradTests checks 1e-4).
struct WinogradPlan {
    let sourceHeight: Int, sourceWidth: Int
    let outHeight: Int, outWidth: Int
    let padTop: Int, padLeft: Int
    /// The input gradient's (and a transposed convolution's) rotated filter.
    let flipped: Bool
    let tilesX: Int, tilesY: Int
    var tiles: Int { tilesX * tilesY }

    /// A plan for a 2-d stride-1 undilated 3x3 convolution whose padding is 0-2 (the rotated filter of an input
    /// gradient pads by 2 minus the forward's padding); nil otherwise.
    init?(geometry g: ConvGeometry, sourceSize: [Int], columns: [Int], transposed: Bool) {
        guard g.kernel == [1, 3, 3], g.stride.allSatisfy({ $0 == 1 }), g.dilation.allSatisfy({ $0 == 1 }),
            sourceSize[0] == 1, columns[0] == 1
        else { return nil }
        let pt = transposed ? 2 - g.padFront[1] : g.padFront[1]
        let pl = transposed ? 2 - g.padFront[2] : g.padFront[2]
        guard (0...2).contains(pt), (0...2).contains(pl) else { return nil }
        sourceHeight = sourceSize[1]
        sourceWidth = sourceSize[2]
        outHeight = columns[1]
        outWidth = columns[2]
        padTop = pt
        padLeft = pl
        flipped = transposed
        tilesX = (outWidth + 3) / 4
        tilesY = (outHeight + 3) / 4
    }

    /// Points of a transformed tile.
    static let points = 36

    /// out[n, g*M + m] = conv(source[n, g*C ..< (g+1)*C], weights), then the epilogue.
    ///
    /// `weights` is [groups][M][C][3][3], or [groups][C][M][3][3] when `swapped` (read with C and M swapped).
    func forward(
        batch: Int, groups: Int, source: ConvInput, channels c: Int,
        weights: UnsafePointer<Float>, swapped: Bool, rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let points = Self.points
        let packed = transformedFilters(weights, swapped: swapped, groups: groups, rows: m, channels: c)
        let kernel = packed[0][0].kernel, kern = kernel.function, mr = kernel.mr, nr = kernel.nr
        // Tiles per block: one or more whole column panels of the kernel.
        let tileBlock = nr * max(1, 64 / nr)
        // Output channels per chunk: whole row panels, about 32 rows.
        let rowChunk = mr * max(1, 32 / mr)
        // Blocks run across the images of the batch: a 14x14 layer has 16 tiles per image, which alone would fill
        // a third of a 48-column panel.
        let allTiles = batch * tiles
        let blocks = (allTiles + tileBlock - 1) / tileBlock
        let planeIn = sourceHeight * sourceWidth, planeOut = outHeight * outWidth
        let kc = packed[0][0].kc
        let offsets = (0..<max(c, 1)).map { $0 * tileBlock }
        let tasks = groups * blocks
        Parallel.workers(tasks) { _, mine in
            let v = ScratchBuffer(count: points * c * tileBlock)
            let prod = ScratchBuffer(count: points * min(rowChunk, m) * tileBlock)
            let inScratch = ScratchBuffer(count: tk_winograd_input_scratch(tileBlock))
            let outScratch = ScratchBuffer(count: tk_winograd_output_scratch(tileBlock))
            offsets.withUnsafeBufferPointer { offs in
                for t in mine {
                    let bi = t % blocks, gi = t / blocks
                    let first = bi * tileBlock, count = min(tileBlock, allTiles - first)
                    let segments = Self.segments(first: first, count: count, tilesPerImage: tiles)
                    for seg in segments {
                        for run in source.runs(image: seg.image, channels: gi * c..<(gi + 1) * c) {
                            tk_winograd_input(
                                run.planes, planeIn, Int32(sourceHeight), Int32(sourceWidth),
                                Int32(run.count), Int32(padTop), Int32(padLeft), tilesX, seg.tile0,
                                Int32(seg.count), v.pointer + run.offset * tileBlock + seg.column,
                                c * tileBlock, tileBlock, inScratch.pointer)
                        }
                    }
                    if count < tileBlock {
                        // The kernel reads whole panels: the columns past the last tile must be finite.
                        for row in 0..<(points * c) {
                            (v.pointer + row * tileBlock + count).initialize(repeating: 0, count: tileBlock - count)
                        }
                    }
                    var m0 = 0
                    while m0 < m {
                        let rowsHere = min(rowChunk, m - m0)
                        let chunkStride = rowsHere * tileBlock
                        for xi in 0..<points {
                            let a = packed[gi][xi]
                            let vXi = v.pointer + xi * c * tileBlock
                            let pXi = prod.pointer + xi * chunkStride
                            var pc = 0
                            while pc < c {
                                let kcb = min(kc, c - pc)
                                let aBlock = a.block(pc)
                                var j = 0
                                while j < count {
                                    for ir in stride(from: m0 / mr, to: (m0 + rowsHere + mr - 1) / mr, by: 1) {
                                        kern(
                                            kcb, aBlock + ir * kcb * mr, vXi + j, offs.baseAddress! + pc,
                                            pXi + (ir * mr - m0) * tileBlock + j, tileBlock,
                                            Int32(min(mr, m - ir * mr)), Int32(min(nr, count - j)), pc > 0 ? 1 : 0)
                                    }
                                    j += nr
                                }
                                pc += kc
                            }
                        }
                        ConvolutionKernels.withOptionalSlice(epilogue.scale, gi * m + m0) { sp in
                            ConvolutionKernels.withOptionalSlice(epilogue.shift, gi * m + m0) { tp in
                                for seg in segments {
                                    let out = output + ((seg.image * groups + gi) * m + m0) * planeOut
                                    tk_winograd_output(
                                        prod.pointer + seg.column, chunkStride, tileBlock,
                                        Int32(rowsHere), tilesX, seg.tile0, Int32(seg.count), out,
                                        planeOut, Int32(outHeight), Int32(outWidth), sp, tp,
                                        epilogue.relu ? 1 : 0, outScratch.pointer)
                                }
                            }
                        }
                        m0 += rowsHere
                    }
                }
            }
        }
    }

    /// Tiles first ..< first + count of the batch (tilesPerImage each) as runs inside one image: the image, its
    /// first tile, the run's length and its column in the block.
    static func segments(first: Int, count: Int, tilesPerImage: Int)
        -> [(image: Int, tile0: Int, count: Int, column: Int)]
    {
        var out: [(Int, Int, Int, Int)] = []
        var done = 0
        while done < count {
            let global = first + done
            let image = global / tilesPerImage, tile0 = global % tilesPerImage
            let n = min(count - done, tilesPerImage - tile0)
            out.append((image, tile0, n, done))
            done += n
        }
        return out
    }

    /// The 36 transformed filters U_xi[m][c] of each group, packed for the micro-kernel. Transform and packing
    /// run over all cores: on one, they were 6.5% of the W=64 U-Net forward's samples (10% of its wall time).
    func transformedFilters(
        _ weights: UnsafePointer<Float>, swapped: Bool, groups: Int, rows m: Int,
        channels c: Int
    ) -> [[GEMM.PackedA]] {
        let points = Self.points
        let ms = swapped ? 9 : c * 9, cs = swapped ? m * 9 : 9
        let u = TensorStorage(count: groups * points * m * c, zeroed: false)
        Parallel.forRanges(groups * m, grain: max(1, 4096 / max(c, 1))) { range in
            for row in range {
                let gi = row / m, mi = row % m
                tk_winograd_filter(
                    weights + gi * m * c * 9 + mi * ms, ms, cs, 1, Int32(c), flipped ? 1 : 0,
                    u.base + gi * points * m * c + mi * c, m * c, c)
            }
        }
        let slots = UnsafeMutableBufferPointer<GEMM.PackedA?>.allocate(capacity: groups * points)
        slots.initialize(repeating: nil)
        defer { slots.deinitialize(); slots.deallocate() }
        Parallel.forEach(groups * points) { i in
            let gi = i / points, xi = i % points
            slots[i] = GEMM.PackedA(m: m, k: c, src: u.base + (gi * points + xi) * m * c, rs: c, cs: 1)
        }
        return (0..<groups).map { gi in (0..<points).map { slots[gi * points + $0]! } }
    }

    /// Whether a product's transformed filters (36 x M x C floats, held twice while packed) fit 128 MB: a W=64
    /// U-Net's 1024 -> 1024 layer at 32x32 would hold 300 MB for 64 tiles of work (its forward's peak RSS went from
    /// 953 to 1238 MB when a measurement chose Winograd there); its 1024 -> 512 layer at 64x64 (76 MB) gains.
    static let maxTransformedFilters = 1 << 25

    static func coversProduct(rows m: Int, channels c: Int, groups: Int) -> Bool {
        points * m * c * groups <= maxTransformedFilters
    }

    /// Largest accumulator (36 x M x C floats per group and worker) the weight gradient takes: 64 MB, which covers
    /// 512 x 1024 channels (a 512 -> 512 layer at 64x64: 96-114 ms through the direct routes; the Winograd forward
    /// of that layer took 44 ms). A W=64 U-Net's 1024 -> 1024 layer (151 MB per worker) stays direct.
    static let maxGradientAccumulator = 1 << 24

    /// Whether the weight gradient of `rows` x `channels` (per group) fits the accumulator bound.
    static func coversWeightGradient(rows m: Int, channels c: Int, groups: Int) -> Bool {
        points * m * c * groups <= maxGradientAccumulator
    }

    /// dW[g][m][c][3][3] = sum over images and tiles of the correlation of source tiles with output-gradient tiles,
    /// as G^T [sum_tiles (A w A^T) . (B^T d B)] G: per block of tiles, the 36 products S_xi += W_xi · V_xi^T
    /// reduce over the block's tiles through the micro-kernel (both operands packed transposed), and one filter
    /// transform per weight ends it.
    func weightGradient(
        batch: Int, groups: Int, a: UnsafePointer<Float>, rows m: Int, source: UnsafePointer<Float>,
        channels c: Int, into result: UnsafeMutablePointer<Float>
    ) {
        let points = Self.points
        let kernel = GEMM.wide, kern = kernel.function, mr = kernel.mr, nr = kernel.nr
        // Tiles reduced per block: 64, or, when the 36 x M x C accumulator outgrows L2 (it is read and written once
        // per block), as many as give each worker one block (512 -> 512 at 64x64: 128-tile blocks).
        let perWorker = (batch * groups * tiles + Parallel.threadCount - 1) / Parallel.threadCount  // tiles
        let tileBlock =
            Self.points * m * c * 4 <= 1 << 20
            ? 64 : min(GEMM.maxDepthBlock, max(64, (perWorker + 15) / 16 * 16))
        let allTiles = batch * tiles  // blocks run across images, as in `forward`
        let blocks = (allTiles + tileBlock - 1) / tileBlock
        let planeIn = sourceHeight * sourceWidth, planeOut = outHeight * outWidth
        let tasks = groups * blocks
        let perGroup = points * m * c
        let sums = TensorStorage(count: groups * perGroup, zeroed: false)
        let mPanels = (m + mr - 1) / mr, cPanels = (c + nr - 1) / nr
        Parallel.accumulating(tasks, count: groups * perGroup, into: sums.base) { mine, acc in
            let v = ScratchBuffer(count: points * c * tileBlock)
            let w = ScratchBuffer(count: points * m * tileBlock)
            let aPack = ScratchBuffer(count: mPanels * mr * tileBlock)
            let bPack = ScratchBuffer(count: cPanels * nr * tileBlock)
            let inScratch = ScratchBuffer(count: tk_winograd_input_scratch(tileBlock))
            let gradScratch = ScratchBuffer(count: tk_winograd_gradient_scratch(tileBlock))
            let rowOffsetsM = (0..<m).map { $0 * tileBlock }, rowOffsetsC = (0..<c).map { $0 * tileBlock }
            GEMM.wide.offsets.withUnsafeBufferPointer { offs in
                for t in mine {
                    let bi = t % blocks, gi = t / blocks
                    let first = bi * tileBlock, count = min(tileBlock, allTiles - first)
                    for seg in Self.segments(first: first, count: count, tilesPerImage: tiles) {
                        let img = seg.image
                        tk_winograd_input(
                            source + (img * groups + gi) * c * planeIn, planeIn, Int32(sourceHeight),
                            Int32(sourceWidth), Int32(c), Int32(padTop), Int32(padLeft), tilesX,
                            seg.tile0, Int32(seg.count), v.pointer + seg.column, c * tileBlock,
                            tileBlock, inScratch.pointer)
                        tk_winograd_gradient(
                            a + (img * groups + gi) * m * planeOut, planeOut, Int32(outHeight),
                            Int32(outWidth), Int32(m), tilesX, seg.tile0, Int32(seg.count),
                            w.pointer + seg.column, m * tileBlock, tileBlock, gradScratch.pointer)
                    }
                    let sum = acc + gi * perGroup
                    for xi in 0..<points {
                        rowOffsetsM.withUnsafeBufferPointer { ro in
                            tk_pack_transposed(
                                w.pointer + xi * m * tileBlock, ro.baseAddress!, Int32(m), 0,
                                Int32(count), Int32(mr), aPack.pointer)
                        }
                        rowOffsetsC.withUnsafeBufferPointer { ro in
                            tk_pack_transposed(
                                v.pointer + xi * c * tileBlock, ro.baseAddress!, Int32(c), 0,
                                Int32(count), Int32(nr), bPack.pointer)
                        }
                        let s = sum + xi * m * c
                        for jr in 0..<cPanels {
                            for ir in 0..<mPanels {
                                kern(
                                    count, aPack.pointer + ir * count * mr, bPack.pointer + jr * count * nr,
                                    offs.baseAddress!, s + ir * mr * c + jr * nr, c, Int32(min(mr, m - ir * mr)),
                                    Int32(min(nr, c - jr * nr)), 1)
                            }
                        }
                    }
                }
            }
        }
        // The final transform over all cores (on one it was 6% of a 512 -> 512 weight gradient).
        Parallel.forRanges(groups * m, grain: max(1, 4096 / max(c, 1))) { range in
            for row in range {
                let gi = row / m, mi = row % m
                tk_winograd_filter_gradient(
                    sums.base + gi * perGroup + mi * c, m * c, c, 1, Int32(c),
                    result + (gi * m + mi) * c * 9, c * 9, 9)
            }
        }
    }
}
