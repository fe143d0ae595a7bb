import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

final class TiledInferenceTests: XCTestCase {
    /// A small U-Net with non-trivial batch-norm statistics, in evaluation mode.
    func model(seed: UInt64, padding: UNetConfig.ConvPadding = .same) -> UNet {
        var g = RandomGenerator(seed: seed)
        let m = UNet(UNetConfig(inChannels: 1, classes: 3, depth: 2, width: 8, padding: padding), generator: &g)
        for case let (_, bn as BatchNorm) in m.namedModules() {
            bn.runningVar.updateInPlace { _ in 0.5 + g.nextFloat() }
            bn.runningMean.updateInPlace { _ in g.nextNormal() * 0.1 }
        }
        m.eval()
        return m
    }

    /// A smooth random image (sum of a few blobs) as a sample.
    func image(width: Int, height: Int, seed: UInt64) -> AugmentationSample {
        var g = RandomGenerator(seed: seed)
        var pixels = [Float](repeating: 0, count: width * height)
        for _ in 0..<8 {
            let cx = Float(g.nextInt(width)), cy = Float(g.nextInt(height)), r = 3 + Float(g.nextInt(10)),
                a = g.nextNormal()
            for y in 0..<height {
                for x in 0..<width {
                    let d = (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)
                    pixels[y * width + x] += a * Foundation.exp(-d / (2 * r * r))
                }
            }
        }
        return AugmentationSample(
            width: width, height: height, channels: 1, image: pixels,
            labels: [Int32](repeating: 0, count: width * height))
    }

    /// One window: the image mirrored outward (torch's reflect padding) to the next multiple of 4 and centred,
    /// the output cropped back; a valid-padding U-Net gets the border it consumes, mirrored the same way.
    func testOneWindowEqualsMirrorPaddedWholeImage() {
        for padding in UNetConfig.ConvPadding.allCases {
            let m = model(seed: 1, padding: padding)
            let sample = image(width: 37, height: 30, seed: 2)
            let got = SegmentationInference.logits(m, sample).scalars
            let sh = m.inputSize(covering: 30), sw = m.inputSize(covering: 37)
            let oh = m.outputSize(forInput: sh)!, ow = m.outputSize(forInput: sw)!
            let top = (sh - oh) / 2 + (oh - 30) / 2, left = (sw - ow) / 2 + (ow - 37) / 2
            var x = Tensor(sample.image, shape: [1, 1, 30, 37])
            // torch-style reflect padding, applied in steps no wider than the image allows.
            var pads = [(top, sh - 30 - top), (left, sw - 37 - left)]
            while pads.contains(where: { $0.0 > 0 || $0.1 > 0 }) {
                let step = [
                    (min(pads[0].0, x.shape[2] - 1), min(pads[0].1, x.shape[2] - 1)),
                    (min(pads[1].0, x.shape[3] - 1), min(pads[1].1, x.shape[3] - 1))
                ]
                x = x.padded(spatial: step, mode: .reflect)
                pads = [(pads[0].0 - step[0].0, pads[0].1 - step[0].1), (pads[1].0 - step[1].0, pads[1].1 - step[1].1)]
            }
            let y = withNoGrad { m(x) }
            let y0 = top - (sh - oh) / 2, x0 = left - (sw - ow) / 2
            let expected = y.sliced(axis: 2, y0..<(y0 + 30)).sliced(axis: 3, x0..<(x0 + 37)).contiguous().scalars
            XCTAssertEqual(got.count, expected.count)
            for i in got.indices { XCTAssertEqual(got[i], expected[i], accuracy: 1e-5, "\(padding) [\(i)]") }
        }
    }

    /// Chunks arrive in raster order and cover every pixel once; whatever the chunk size (one pixel row of tiles,
    /// sizes off the tile grid, the whole image) the logits are bit-identical, and each chunk reads only a window
    /// inside the image. Tiles blended with gaussian weights at 50% overlap leave no seam: across every tile
    /// border the tiled logits step no more than whole-image logits do there (plus a little), while abutting tiles
    /// with constant weights show the seams the test looks for.
    func testChunksAreBitIdenticalAndLeaveNoSeamsAtTileBorders() {
        // One convolution route: chunks batch different numbers of tiles, other plan-cache keys, and routes timed
        // on a cold cache (every CI run's) round differently; what this test is about is the chunking.
        let (_, routes) = ConvRoute.taken { ConvRoute.forcing(.im2col) { chunksAreBitIdentical() } }
        XCTAssertEqual(routes, [.im2col])
    }

    func chunksAreBitIdentical() {
        let m = model(seed: 3)
        let sample = image(width: 96, height: 80, seed: 4)
        let whole = SegmentationInference.logits(m, sample).scalars
        let tiled = TiledInference(tile: 32)
        var results: [[Float]] = []
        for chunk in [Int.max, 7, 20, 33, 48] {
            var out = [Float](repeating: .nan, count: 3 * 80 * 96)
            var seen = [Int](repeating: 0, count: 80 * 96)
            var last = (-1, -1)
            tiled.run(
                model: m, width: 96, height: 80, channels: 1, chunk: chunk,
                read: { w in
                    XCTAssertTrue(w.x >= 0 && w.y >= 0 && w.x + w.width <= 96 && w.y + w.height <= 80, "\(w)")
                    var window: [Float] = []
                    for y in w.y..<(w.y + w.height) {
                        let from = y * 96 + w.x
                        window += sample.image[from..<(from + w.width)]
                    }
                    return window
                },
                emit: { w, logits in
                    XCTAssertLessThanOrEqual(max(w.width, w.height), chunk)
                    XCTAssertTrue((w.y, w.x) > last, "chunks out of raster order")
                    last = (w.y, w.x)
                    let n = w.width * w.height
                    for y in 0..<w.height {
                        for x in 0..<w.width {
                            seen[(w.y + y) * 96 + w.x + x] += 1
                            for c in 0..<3 {
                                out[c * 80 * 96 + (w.y + y) * 96 + w.x + x] = logits[c * n + y * w.width + x]
                            }
                        }
                    }
                })
            XCTAssertEqual(Set(seen), [1], "chunk \(chunk)")
            results.append(out)
        }
        for (k, r) in results.enumerated() { XCTAssertEqual(r, results[0], "chunk size #\(k) differs") }
        let out = results[0]
        XCTAssertEqual(SegmentationInference.logits(m, sample, inference: tiled).scalars, out)
        // Tile borders: with 50% overlap of 32-pixel tiles the windows start every 16 px (evenly spread).
        func seam(_ logits: [Float], at columns: [Int]) -> Float {
            var total: Float = 0, n: Float = 0
            for c in 0..<3 {
                for y in 0..<80 {
                    for x in columns {
                        total += Swift.abs(logits[(c * 80 + y) * 96 + x] - logits[(c * 80 + y) * 96 + x - 1]); n += 1
                    }
                }
            }
            return total / n
        }
        let borders = [16, 32, 48, 64, 80]
        let reference = seam(whole, at: borders)
        XCTAssertLessThan(seam(out, at: borders), reference * 1.15 + 1e-3, "gaussian blending leaves a seam")
        let abutting = SegmentationInference.logits(
            m, sample, inference: TiledInference(tile: 32, overlap: 0, blend: .constant)
        ).scalars
        XCTAssertGreaterThan(
            seam(abutting, at: [32, 64]), seam(whole, at: [32, 64]) * 1.15 + 1e-3,
            "abutting tiles should show seams (else this test could not see any)")
    }

    /// Test-time augmentation on a model that is itself symmetric changes nothing; on this one it averages.
    func testTestTimeAugmentationAveragesTheEightSymmetries() {
        let m = model(seed: 5)
        let sample = image(width: 32, height: 32, seed: 6)
        let plain = SegmentationInference.logits(m, sample).scalars
        let tta = SegmentationInference.logits(m, sample, inference: TiledInference(tile: .max, tta: true)).scalars
        // Direct: the average over the 8 transforms of the image of the model's logits mapped back.
        func transformed(_ a: [Float], planes: Int, _ f: (Int, Int) -> (Int, Int)) -> [Float] {
            var out = a
            for p in 0..<planes {
                for y in 0..<32 {
                    for x in 0..<32 { let (sx, sy) = f(x, y); out[p * 1024 + y * 32 + x] = a[p * 1024 + sy * 32 + sx] }
                }
            }
            return out
        }
        let maps: [((Int, Int) -> (Int, Int), (Int, Int) -> (Int, Int))] = [
            ({ ($0, $1) }, { ($0, $1) }), ({ (31 - $0, $1) }, { (31 - $0, $1) }),
            ({ ($0, 31 - $1) }, { ($0, 31 - $1) }),
            ({ (31 - $0, 31 - $1) }, { (31 - $0, 31 - $1) }), ({ ($1, $0) }, { ($1, $0) }),
            ({ ($1, 31 - $0) }, { (31 - $1, $0) }), ({ (31 - $1, $0) }, { ($1, 31 - $0) }),
            ({ (31 - $1, 31 - $0) }, { (31 - $1, 31 - $0) })
        ]
        var sum = [Float](repeating: 0, count: 3 * 1024)
        for (forward, back) in maps {
            let input = transformed(sample.image, planes: 1, forward)
            let y = withNoGrad { m(Tensor(input, shape: [1, 1, 32, 32])) }.scalars
            let restored = transformed(y, planes: 3, back)
            for i in sum.indices { sum[i] += restored[i] / 8 }
        }
        for i in tta.indices { XCTAssertEqual(tta[i], sum[i], accuracy: 1e-5) }
        XCTAssertNotEqual(tta, plain)
    }

    /// On the ISBI slices, with the U-Net `ISBICheckpoint` trains there, masks from 256-pixel tiles at 50%
    /// overlap agree with whole-image masks on >= 99.9% of pixels.
    func testTiledAndWholeImageMasksAgreeOnISBI() throws {
        let loaded = try Checkpoint.load(try ISBICheckpoint.trained.get())
        let isbi = ISBICheckpoint.folder
        let dataset = try SegmentationDataset(
            images: isbi.appendingPathComponent("images"),
            masks: isbi.appendingPathComponent("masks"), maskKind: .binary)
        var agree = 0, total = 0, membrane = 0
        for i in dataset.pairs.indices {
            let sample = SegmentationInference.normalised(
                AugmentationSample(try dataset.load(i)),
                mean: loaded.info.normalizationMean, std: loaded.info.normalizationStd)
            let whole = SegmentationInference.logits(loaded.model, sample).argmax(axis: 1).scalars
            let tiled = SegmentationInference.logits(loaded.model, sample, inference: TiledInference(tile: 256))
                .argmax(axis: 1).scalars
            agree += zip(whole, tiled).filter { $0 == $1 }.count
            total += whole.count
            membrane += whole.filter { $0 == 0 }.count
        }
        let fraction = Double(agree) / Double(total)
        print("tiled vs whole-image masks on \(dataset.pairs.count) ISBI slices: \(fraction) agree")
        XCTAssertGreaterThanOrEqual(fraction, 0.999)
        XCTAssertGreaterThan(
            Double(membrane) / Double(total), 0.05, "the model must predict both classes for this to mean anything")
    }
}
