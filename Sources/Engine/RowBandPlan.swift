import CKernels
import Foundation

/// The fast path for stride-1 1-d/2-d convolutions: no im2col at all.
///
/// Output rows are processed in bands. For each band, the rows of the source it reads are copied once into a
/// zero-padded buffer of width `paddedWidth`; in that buffer every kernel tap (channel, ky, kx) is a constant
/// offset from the output position, so the GEMM micro-kernel reads B straight from it. Wide outputs are written
/// straight into the output tensor row by row; narrow ones are computed over the padded width into a buffer whose
/// real columns are copied out. Scratch is bounded by the band, not the image.
struct RowBandPlan {
    let channels: Int
    let sourceHeight: Int, sourceWidth: Int
    let outHeight: Int, outWidth: Int
    /// Per tap (ky, kx): source row and column offset from the output position.
    let tapRows: [Int], tapCols: [Int]
    let minRow: Int, rowSpan: Int, minCol: Int
    let paddedWidth: Int
    let bandRows: Int

    /// From this output width on, the forward pass tiles each output row separately and writes into the output
    /// tensor (the last panel of a row is partial: 97% filled at 512, 89% at 128 and 256); narrower images compute
    /// padded rows into a buffer and copy the real columns out.
    static let directWriteWidth = 128

    var bandSourceRows: Int { bandRows + rowSpan + 1 }
    var bandPlane: Int { bandSourceRows * paddedWidth }
    /// Floats of a band buffer: the planes plus one tile of slack, because the micro-kernel reads a whole
    /// `GEMM.maxNr`-column row of B even for a partial panel, and on a narrow image the last panel of the last tap
    /// starts less than `nr` columns before the end of the planes.
    var bandBufferCount: Int { channels * bandPlane + GEMM.maxNr }
    var taps: Int { tapRows.count }

    /// A plan when the convolution has stride 1 and no depth axis; nil otherwise.
    init?(geometry g: ConvGeometry, channels: Int, sourceSize: [Int], columns: [Int], transposed: Bool) {
        guard g.stride.allSatisfy({ $0 == 1 }), g.kernel[0] == 1, sourceSize[0] == 1, columns[0] == 1 else {
            return nil
        }
        self.channels = channels
        sourceHeight = sourceSize[1]
        sourceWidth = sourceSize[2]
        outHeight = columns[1]
        outWidth = columns[2]
        var rows: [Int] = [], cols: [Int] = []
        for ky in 0..<g.kernel[1] {
            for kx in 0..<g.kernel[2] {
                let oy = ky * g.dilation[1] - g.padFront[1], ox = kx * g.dilation[2] - g.padFront[2]
                rows.append(transposed ? -oy : oy)
                cols.append(transposed ? -ox : ox)
            }
        }
        tapRows = rows
        tapCols = cols
        minRow = rows.min()!
        rowSpan = rows.max()! - minRow
        minCol = cols.min()!
        paddedWidth = outWidth + cols.max()! - minCol
        // Band height: as many rows as fit a ~512 KB source band, but at least ~1024 GEMM columns (long enough
        // for the micro-kernels when channels are many), and at least two bands per core when the image allows.
        let columnsTarget = (1024 + paddedWidth - 1) / paddedWidth
        let budgetRows = (1 << 17) / max(1, channels * paddedWidth) - rowSpan - 1
        let spread = max(1, (outHeight + 2 * Parallel.threadCount - 1) / (2 * Parallel.threadCount))
        bandRows = max(1, min(max(columnsTarget, budgetRows), spread, outHeight))
    }

    /// Flattened offsets of each (channel, tap) inside a band buffer.
    var offsets: [Int] {
        var offs: [Int] = []
        offs.reserveCapacity(channels * taps)
        for c in 0..<channels {
            for t in 0..<taps {
                offs.append(c * bandPlane + (tapRows[t] - minRow) * paddedWidth + (tapCols[t] - minCol))
            }
        }
        return offs
    }

    /// Copies the source rows band `r0` needs into `band` with zero padding.
    func fillBand(_ band: UnsafeMutablePointer<Float>, source: UnsafePointer<Float>, firstRow r0: Int) {
        let planeIn = sourceHeight * sourceWidth
        fillBand(band, firstRow: r0) { source + $0 * planeIn }
    }

    /// Copies the rows band `r0` needs from the planes `plane(c)` into `band` with zero padding.
    func fillBand(_ band: UnsafeMutablePointer<Float>, firstRow r0: Int, plane: (Int) -> UnsafePointer<Float>) {
        for c in 0..<channels {
            let dstPlane = band + c * bandPlane
            let srcPlane = plane(c)
            for t in 0..<bandSourceRows {
                let y = r0 + minRow + t
                let dst = dstPlane + t * paddedWidth
                if y < 0 || y >= sourceHeight {
                    dst.initialize(repeating: 0, count: paddedWidth)
                    continue
                }
                // dst[x] = src[y][x + minCol]
                let lo = max(0, -minCol), hi = min(paddedWidth, sourceWidth - minCol)
                if lo > 0 { dst.initialize(repeating: 0, count: min(lo, paddedWidth)) }
                if hi > lo { (dst + lo).update(from: srcPlane + y * sourceWidth + lo + minCol, count: hi - lo) }
                if hi < paddedWidth { (dst + max(hi, lo)).initialize(repeating: 0, count: paddedWidth - max(hi, lo)) }
            }
        }
    }

    var bandCount: Int { (outHeight + bandRows - 1) / bandRows }

    /// out[n, g*M + m] = A_g · band taps, then the epilogue over the band's rows of the output.
    func forward(
        batch: Int, groups: Int, source: ConvInput, weights: [GEMM.PackedA], rows m: Int,
        output: UnsafeMutablePointer<Float>, epilogue: ConvEpilogue
    ) {
        let bands = bandCount
        let tasks = batch * groups * bands
        let offs = offsets
        let planeOut = outHeight * outWidth
        let kernel = GEMM.kernel(rows: m), kern = kernel.function, mr = kernel.mr, nr = kernel.nr
        let n = bandRows * paddedWidth
        let chunk = Swift.max(nr, (1 << 17) / Swift.max(m, 1) / nr * nr)
        let writesDirectly = outWidth >= RowBandPlan.directWriteWidth
        let layouts = weights.compactMap(singleRowLayouts)
        let singleRowWeights = layouts.count == weights.count ? layouts : nil
        Parallel.workers(tasks) { _, mine in
            // The one-row kernel reads the planes in place: no band, no product buffer.
            let usesBand = singleRowWeights == nil
            let band = ScratchBuffer(count: usesBand ? bandBufferCount : 1)
            if usesBand { (band.pointer + channels * bandPlane).initialize(repeating: 0, count: GEMM.maxNr) }
            let cbuf = ScratchBuffer(count: writesDirectly || !usesBand ? 1 : m * n)
            for t in mine {
                let bi = t % bands, gi = (t / bands) % groups, img = t / (bands * groups)
                let r0 = bi * bandRows, rowsHere = min(bandRows, outHeight - r0)
                let a = weights[gi]
                let outBase = output + (img * groups + gi) * m * planeOut + r0 * outWidth
                // The band GEMM routes copy the source rows first; the one-row kernel reads the planes in place.
                func fillBandAndPrefetch() {
                    fillBand(band.pointer, firstRow: r0) { source.plane(image: img, channel: gi * channels + $0) }
                    if m <= Self.prefetchRows {
                        prefetchBand(
                            of: t + Swift.min(Parallel.threadCount, tasks), tasks: tasks, groups: groups,
                            source: source)
                    }
                }
                if let single = singleRowWeights?[gi] {  // one [Float] per output channel
                    let planes = (0..<channels).map { Optional(source.plane(image: img, channel: gi * channels + $0)) }
                    // Output channels one after the other: the band's source rows (a ~512 KB budget) stay in L2.
                    for (row, layout) in single.enumerated() {
                        layout.withUnsafeBufferPointer { w in
                            tk_conv3x3_single_row(
                                planes, Int32(channels), Int32(sourceHeight), Int32(sourceWidth),
                                Int32(minRow), Int32(minCol), w.baseAddress!, Int32(r0),
                                Int32(rowsHere), Int32(outWidth), outBase + row * planeOut,
                                outWidth)
                        }
                    }
                } else if writesDirectly {
                    fillBandAndPrefetch()
                    // Column panels stay inside one output row, so results go straight to the output tensor.
                    offs.withUnsafeBufferPointer { ob in
                        for y in 0..<rowsHere {
                            let bRow = band.pointer + y * paddedWidth, cRow = outBase + y * outWidth
                            var pc = 0
                            while pc < a.k {
                                let kcb = min(a.kc, a.k - pc)
                                let aBlock = a.block(pc)
                                var j = 0
                                while j < outWidth {
                                    let cols = min(nr, outWidth - j)
                                    for ir in 0..<a.panels {
                                        kern(
                                            kcb, aBlock + ir * kcb * mr, bRow + j, ob.baseAddress! + pc,
                                            cRow + ir * mr * planeOut + j, planeOut, Int32(min(mr, m - ir * mr)),
                                            Int32(cols), pc > 0 ? 1 : 0)
                                    }
                                    j += nr
                                }
                                pc += a.kc
                            }
                            if a.k == 0 {
                                for row in 0..<m { (cRow + row * planeOut).initialize(repeating: 0, count: outWidth) }
                            }
                        }
                    }
                } else {
                    fillBandAndPrefetch()
                    let nHere = rowsHere * paddedWidth
                    offs.withUnsafeBufferPointer { ob in
                        // Column chunks small enough that their M x chunk block of C stays in L2 across depth blocks.
                        var jc = 0
                        while jc < nHere {
                            let chunkEnd = min(nHere, jc + chunk)
                            var pc = 0
                            while pc < a.k {
                                let kcb = min(a.kc, a.k - pc)
                                let aBlock = a.block(pc)
                                var j = jc
                                while j < chunkEnd {
                                    let cols = min(nr, chunkEnd - j)
                                    for ir in 0..<a.panels {
                                        kern(
                                            kcb, aBlock + ir * kcb * mr, band.pointer + j, ob.baseAddress! + pc,
                                            cbuf.pointer + ir * mr * n + j, n, Int32(min(mr, m - ir * mr)),
                                            Int32(cols), pc > 0 ? 1 : 0)
                                    }
                                    j += nr
                                }
                                pc += a.kc
                            }
                            jc = chunkEnd
                        }
                    }
                    if a.k == 0 { cbuf.pointer.initialize(repeating: 0, count: m * n) }
                    for row in 0..<m {
                        for y in 0..<rowsHere {
                            (outBase + row * planeOut + y * outWidth).update(
                                from: cbuf.pointer + row * n + y * paddedWidth, count: outWidth)
                        }
                    }
                }
                if !epilogue.isIdentity {
                    for row in 0..<m {
                        ConvolutionKernels.withOptionalSlice(epilogue.scale, gi * m + row) { sp in
                            ConvolutionKernels.withOptionalSlice(epilogue.shift, gi * m + row) { tp in
                                tk_epilogue(
                                    outBase + row * planeOut, planeOut, 1, Int32(rowsHere * outWidth), sp, tp,
                                    epilogue.relu ? 1 : 0)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Products of at most this many rows (first layers' input gradients) read far more source than they write
    /// and compute: each band prefetches the source rows of the worker's next band while it computes, so the next
    /// copy reads from cache (gray 1 -> 16 input gradient at 512x512: 1.07-1.53 -> 0.85-1.03 ms). Products of more
    /// rows keep L2 for their own band.
    static let prefetchRows = 4

    /// Prefetches the source rows task `next` will copy into its band.
    func prefetchBand(of next: Int, tasks: Int, groups: Int, source: ConvInput) {
        guard next < tasks else { return }
        let bands = bandCount
        let nr0 = (next % bands) * bandRows + minRow, image = next / (bands * groups), gi = (next / bands) % groups
        let first = Swift.max(0, nr0), last = Swift.min(sourceHeight, nr0 + bandSourceRows)
        guard last > first else { return }
        for c in 0..<channels {
            tk_prefetch_rows(
                source.plane(image: image, channel: gi * channels + c) + first * sourceWidth, 1, 0,
                (last - first) * sourceWidth)
        }
    }

    /// Largest output channel count that runs `tk_conv3x3_single_row` once per channel rather than the GEMM tile:
    /// the RGB first layer's input gradient (32 -> 3 at 512 x 512) is bound by reading its source, which the band
    /// copy read twice (4.1-6.2 ms against 2.9-3.6 for its forward).
    static let singleRowChannels = 3

    /// For a product of a 3x3 undilated kernel with at most `singleRowChannels` rows, each row's weights as
    /// w[c][band row][band column] for `tk_conv3x3_single_row`, which reuses each loaded source vector for the output
    /// rows it reaches (the gray first layer's input gradient at 512x512 ran at 22-24% of the FMA peak through the
    /// one-row GEMM kernel); nil for other shapes.
    func singleRowLayouts(_ a: GEMM.PackedA) -> [[Float]]? {
        guard a.m <= Self.singleRowChannels, taps == 9, rowSpan == 2, tapCols.max()! - minCol == 2 else { return nil }
        return (0..<a.m).map { i in
            var w = [Float](repeating: 0, count: channels * 9)
            for c in 0..<channels {
                for t in 0..<9 {
                    w[c * 9 + (tapRows[t] - minRow) * 3 + (tapCols[t] - minCol)] = a.element(i, c * 9 + t)
                }
            }
            return w
        }
    }

    /// From this output width on, the dot route's weight gradient reads the upstream gradient's rows in place
    /// (copying them into the band cost more than the products for a 1 -> 16 first layer at 512 x 512).
    static let rowByRowWidth = 64

    /// C[i][j] += sum_q a[i * aStride + q] * b[bOffsets[j] + q] through the packed micro-kernel: both operands
    /// are transposed into panels one depth block of `GEMM.kc` columns at a time.
    func packedProduct(
        a: UnsafePointer<Float>, aRows m: Int, aStride: Int, b: UnsafePointer<Float>,
        bOffsets: UnsafePointer<Int>, bRows kg: Int, length: Int, into c: UnsafeMutablePointer<Float>,
        ldc: Int, aPack: UnsafeMutablePointer<Float>, bPack: UnsafeMutablePointer<Float>
    ) {
        let mr = GEMM.mr, nr = GEMM.nr, kern = GEMM.info.kernel!
        let aOffsets = (0..<m).map { $0 * aStride }
        aOffsets.withUnsafeBufferPointer { ao in
            GEMM.wide.offsets.withUnsafeBufferPointer { po in
                var q0 = 0
                while q0 < length {
                    let kc = Swift.min(GEMM.kc, length - q0)
                    tk_pack_transposed(a, ao.baseAddress!, Int32(m), q0, Int32(kc), Int32(mr), aPack)
                    // B in column chunks of GEMM.nc so the packed chunk stays in L2.
                    var jc = 0
                    while jc < kg {
                        let nc = Swift.min(GEMM.nc, kg - jc)
                        tk_pack_transposed(b, bOffsets + jc, Int32(nc), q0, Int32(kc), Int32(nr), bPack)
                        for jr in 0..<((nc + nr - 1) / nr) {
                            let cols = Swift.min(nr, nc - jr * nr)
                            for ir in 0..<((m + mr - 1) / mr) {
                                kern(
                                    kc, aPack + ir * kc * mr, bPack + jr * kc * nr, po.baseAddress!,
                                    c + ir * mr * ldc + jc + jr * nr, ldc, Int32(Swift.min(mr, m - ir * mr)),
                                    Int32(cols), 1)
                            }
                        }
                        jc += nc
                    }
                    q0 += kc
                }
            }
        }
    }

    /// dW[g*M + m][(c, tap)] = sum over images and output pixels of a[n, g*M + m, pixel] * source tap value.
    ///
    /// - Parameter packed: both operands transposed into packed panels for the GEMM micro-kernel (pays with many
    ///   output channels: the transposes cost about 16 (M + N) / (M N) of the multiply-adds), rather than the
    ///   row-reduction kernel reading both in place (few channels).
    func weightGradient(
        batch: Int, groups: Int, a: UnsafePointer<Float>, rows m: Int, source: UnsafePointer<Float>,
        packed: Bool, into result: UnsafeMutablePointer<Float>
    ) {
        let bands = bandCount
        let tasks = batch * groups * bands
        let offs = offsets
        let kg = channels * taps
        let planeIn = sourceHeight * sourceWidth, planeOut = outHeight * outWidth
        let n = bandRows * paddedWidth
        // The dot kernel reads wide rows of the upstream gradient in place, one output row per call; the packed
        // product and narrow images copy them into a zero-padded band first (one call over the whole band).
        let rowByRow = !packed && outWidth >= RowBandPlan.rowByRowWidth
        Parallel.accumulating(tasks, count: groups * m * kg, into: result) { mine, acc in
            let band = ScratchBuffer(count: bandBufferCount)
            (band.pointer + channels * bandPlane).initialize(repeating: 0, count: GEMM.maxNr)
            let gbuf = ScratchBuffer(count: rowByRow ? 1 : m * n)
            if !rowByRow { gbuf.pointer.initialize(repeating: 0, count: m * n) }
            let aPack = ScratchBuffer(count: ((m + GEMM.mr - 1) / GEMM.mr) * GEMM.mr * GEMM.kc)
            let bPack = ScratchBuffer(count: ((GEMM.nc + GEMM.nr - 1) / GEMM.nr) * GEMM.nr * GEMM.kc)
            for t in mine {
                let bi = t % bands, gi = (t / bands) % groups, img = t / (bands * groups)
                let r0 = bi * bandRows, rowsHere = min(bandRows, outHeight - r0)
                fillBand(band.pointer, source: source + (img * groups + gi) * channels * planeIn, firstRow: r0)
                let aBase = a + (img * groups + gi) * m * planeOut + r0 * outWidth
                if rowByRow {
                    offs.withUnsafeBufferPointer { ob in
                        for y in 0..<rowsHere {
                            tk_gemm_dot(
                                Int32(m), Int32(kg), outWidth, aBase + y * outWidth, planeOut,
                                band.pointer + y * paddedWidth, ob.baseAddress!, acc + gi * m * kg, kg, 1)
                        }
                    }
                    continue
                }
                for row in 0..<m {
                    for y in 0..<rowsHere {
                        (gbuf.pointer + row * n + y * paddedWidth).update(
                            from: aBase + row * planeOut + y * outWidth,
                            count: outWidth)
                    }
                }
                offs.withUnsafeBufferPointer { ob in
                    if packed {
                        packedProduct(
                            a: gbuf.pointer, aRows: m, aStride: n, b: band.pointer, bOffsets: ob.baseAddress!,
                            bRows: kg, length: rowsHere * paddedWidth, into: acc + gi * m * kg, ldc: kg,
                            aPack: aPack.pointer, bPack: bPack.pointer)
                    } else {
                        tk_gemm_dot(
                            Int32(m), Int32(kg), rowsHere * paddedWidth, gbuf.pointer, n, band.pointer,
                            ob.baseAddress!, acc + gi * m * kg, kg, 1)
                    }
                }
            }
        }
    }
}
