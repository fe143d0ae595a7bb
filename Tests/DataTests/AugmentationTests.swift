import Foundation
import TesseraData
import TesseraEngine
import TestSupport
import XCTest

final class AugmentationTests: XCTestCase {
    /// A sample whose label at each pixel encodes its image value, so joint moves can be checked exactly.
    func tagged(width: Int, height: Int) -> AugmentationSample {
        let n = width * height
        let labels = (0..<n).map { Int32($0 % 251) }
        let image = labels.map { Float($0) / 250 } + labels.map { 1 - Float($0) / 250 }
        return AugmentationSample(width: width, height: height, channels: 2, image: image, labels: labels)
    }

    func assertJoint(_ s: AugmentationSample, file: StaticString = #filePath, line: UInt = #line) {
        let n = s.width * s.height
        for p in 0..<n {
            XCTAssertEqual(
                s.image[p] * 250, Float(s.labels[p]), accuracy: 1e-3, "pixel \(p) moved apart", file: file, line: line)
            XCTAssertEqual(s.image[n + p], 1 - s.image[p], accuracy: 1e-5, file: file, line: line)
            if abs(s.image[p] * 250 - Float(s.labels[p])) > 1e-3 { return }
        }
    }

    func testExactGeometricStepsMoveImageAndMaskTogether() {
        var g = RandomGenerator(seed: 1)
        let base = tagged(width: 7, height: 5)
        var s = base
        HorizontalFlip(probability: 1).apply(&s, &g)
        XCTAssertEqual(s.labels[0], base.labels[6])
        assertJoint(s)
        HorizontalFlip(probability: 1).apply(&s, &g)
        XCTAssertEqual(s, base, "two flips are the identity")
        VerticalFlip(probability: 1).apply(&s, &g)
        assertJoint(s)
        Rotate90(probability: 1).apply(&s, &g)
        XCTAssertTrue([s.width, s.height] == [5, 7] || [s.width, s.height] == [7, 5])
        assertJoint(s)
        var c = tagged(width: 40, height: 30)
        RandomCrop(size: 16).apply(&c, &g)
        XCTAssertEqual([c.width, c.height], [16, 16])
        assertJoint(c)
        var small = tagged(width: 10, height: 12)
        RandomCrop(size: 16).apply(&small, &g)
        XCTAssertEqual([small.width, small.height], [16, 16], "smaller images are mirrored up, not resized")
        assertJoint(small)
    }

    /// Vertical flip and each quarter turn put every pixel where the definition says (numpy's `flipud` and
    /// `rot90`), image and mask alike: a step that moved both the same wrong way would pass the joint check alone.
    func testFlipsAndRotationsPutEachPixelWhereExpected() {
        let w = 7, h = 5
        let base = tagged(width: w, height: h)
        func label(_ s: AugmentationSample, _ x: Int, _ y: Int) -> Int32 { s.labels[y * s.width + x] }
        var s = base
        var g = RandomGenerator(seed: 1)
        VerticalFlip(probability: 1).apply(&s, &g)
        XCTAssertEqual([s.width, s.height], [w, h])
        for y in 0..<h {
            for x in 0..<w { XCTAssertEqual(label(s, x, y), label(base, x, h - 1 - y), "flip (\(x),\(y))") }
        }
        assertJoint(s)
        // The three turns, each identified by where the source's top-left pixel lands; every pixel checked.
        var seen = Set<String>()
        for seed in 0..<40 {
            var r = base
            var rg = RandomGenerator(seed: UInt64(seed))
            Rotate90(probability: 1).apply(&r, &rg)
            assertJoint(r)
            let turn: String
            if [r.width, r.height] == [w, h] {
                turn = "180"
                for y in 0..<h { for x in 0..<w { XCTAssertEqual(label(r, x, y), label(base, w - 1 - x, h - 1 - y)) } }
            } else if label(r, r.width - 1, 0) == label(base, 0, 0) {
                turn = "90 clockwise"  // output (x, y) = input (y, h - 1 - x)
                for y in 0..<w { for x in 0..<h { XCTAssertEqual(label(r, x, y), label(base, y, h - 1 - x)) } }
            } else {
                turn = "90 counter-clockwise"  // output (x, y) = input (w - 1 - y, x)
                XCTAssertEqual(label(r, 0, r.height - 1), label(base, 0, 0), "not a quarter turn")
                for y in 0..<w { for x in 0..<h { XCTAssertEqual(label(r, x, y), label(base, w - 1 - y, x)) } }
            }
            seen.insert(turn)
        }
        XCTAssertEqual(seen.count, 3, "every turn is drawn: \(seen)")
    }

    func testInterpolatingStepsNeverInterpolateClassIds() {
        var g = RandomGenerator(seed: 2)
        let n = 48 * 40
        let labels = (0..<n).map { Int32(($0 % 48) / 12 % 2 == 0 ? 0 : 7) }
        let base = AugmentationSample(
            width: 48, height: 40, channels: 1, image: labels.map { Float($0) / 7 }, labels: labels)
        let steps: [any Augmentation] = [
            RandomAffine(degrees: -30...30, probability: 1), ElasticDeformation(sigma: 6, probability: 1),
            RandomResizedCrop(size: 32)
        ]
        for step in steps {
            var s = base
            step.apply(&s, &g)
            XCTAssertTrue(Set(s.labels).isSubset(of: [0, 7]), "\(type(of: step)) produced \(Set(s.labels))")
            XCTAssertEqual(Set(s.labels), [0, 7])
            // The mask stays aligned with the image: where the image is clearly one class, so is the label.
            for p in 0..<(s.width * s.height) where s.image[p] < 0.05 || s.image[p] > 0.95 {
                XCTAssertEqual(s.labels[p], s.image[p] > 0.5 ? 7 : 0, "\(type(of: step)) pixel \(p)")
                if s.labels[p] != (s.image[p] > 0.5 ? 7 : 0) { break }
            }
        }
        var still = base
        ElasticDeformation(sigma: 0, probability: 1).apply(&still, &g)
        XCTAssertEqual(still, base, "zero displacement is the identity")
    }

    func testPhotometricStepsLeaveLabelsAndAreSeeded() {
        let base = tagged(width: 16, height: 16)
        let pipeline = AugmentationPipeline([
            HorizontalFlip(), Rotate90(), Brightness(probability: 1), Contrast(probability: 1),
            Gamma(probability: 1), GaussianNoise(std: 0.01...0.02, probability: 1),
            GaussianBlur(probability: 1)
        ])
        let a = pipeline(base, seed: 5, index: 3), b = pipeline(base, seed: 5, index: 3),
            c = pipeline(base, seed: 5, index: 4)
        XCTAssertEqual(a, b, "same seed and index, same result")
        XCTAssertNotEqual(a.image, c.image)
        XCTAssertEqual(Set(a.labels), Set(base.labels))
        var g = RandomGenerator(seed: 9)
        var s = base
        Brightness(delta: 0.2...0.2, probability: 1).apply(&s, &g)
        XCTAssertEqual(s.labels, base.labels)
        XCTAssertEqual(s.image[10], base.image[10] + 0.2, accuracy: 1e-6)
        var never = base
        Brightness(probability: 0).apply(&never, &g)
        XCTAssertEqual(never, base)
    }

    /// A leading crop drawn before decoding gives the same samples as decoding everything and cropping, for
    /// every pair of the real ISBI slices (the loader's fast path).
    func testWindowedLoadingEqualsCroppingTheWholePair() throws {
        let root = try SharedFixtures.require(SharedFixtures.sharedRoot.appendingPathComponent("data/isbi2012"))
        let dataset = try SegmentationDataset(
            images: root.appendingPathComponent("images"),
            masks: root.appendingPathComponent("masks"), maskKind: .binary, classes: 2)
        let pipeline = AugmentationPipeline([
            RandomCrop(size: 200), HorizontalFlip(), Rotate90(),
            ElasticDeformation(gridPoints: 3, sigma: 8, probability: 1)
        ])
        var windows = 0
        for index in dataset.pairs.indices {
            let whole = pipeline(AugmentationSample(try dataset.load(index)), seed: 7, index: index)
            let lazy = try pipeline(seed: 7, index: index) { window in
                AugmentationSample(
                    try dataset.load(index) { w, h in
                        let win = window(w, h)
                        if win != nil { windows += 1 }
                        return win
                    })
            }
            XCTAssertEqual(lazy, whole, "pair \(index)")
        }
        XCTAssertEqual(windows, dataset.pairs.count, "every pair took the windowed path")
        // A crop larger than the image cannot be a window: the whole pair is loaded and mirrored up to it.
        let small = AugmentationPipeline([RandomCrop(size: 600)])
        let big = try small(seed: 1, index: 0) { window in AugmentationSample(try dataset.load(0, window: window)) }
        XCTAssertEqual([big.width, big.height], [600, 600])
        XCTAssertEqual(big, small(AugmentationSample(try dataset.load(0)), seed: 1, index: 0))
    }
}
