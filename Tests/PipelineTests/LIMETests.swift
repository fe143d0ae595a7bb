import Foundation
import TesseraData
import TesseraEngine
import TesseraExplain
import TesseraNN
import TestSupport
import XCTest

/// LIME: the surrogate fit against the real lime package's `LimeBase` (`Fixtures/lime-reference.safetensors`,
/// made by `Fixtures/make_lime_reference.py`), SLIC's superpixels, and LIME ranking the superpixels a model
/// depends on first.
final class LIMETests: XCTestCase {
    func testTheSurrogateEqualsLimeBase() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/lime-reference.safetensors")
        let file = try SafeTensorsFile(contentsOf: url)
        for name in ["small", "lime"] {
            let kept = try file.tensor("\(name).kept")
            let (m, k) = (kept.shape[0], kept.shape[1])
            let flags: [Bool] = kept.scalars.map { $0 != 0 }
            let rows: [[Bool]] = (0..<m).map { r in Array(flags[(r * k)..<((r + 1) * k)]) }
            let scores = try file.tensor("\(name).scores").scalars.map(Double.init)
            let expected = try file.tensor("\(name).weights").scalars
            let fit = try file.tensor("\(name).fit").scalars
            let s = LIME.fit(kept: rows, scores: scores)
            let scale = Double(expected.map(abs).max() ?? 1)
            for j in 0..<k { XCTAssertEqual(s.weights[j], Double(expected[j]), accuracy: 1e-4 * scale, "\(name) \(j)") }
            XCTAssertEqual(s.intercept, Double(fit[0]), accuracy: 1e-4 * scale, "\(name) intercept")
            XCTAssertEqual(s.r2, Double(fit[1]), accuracy: 1e-4, "\(name) R^2")
            XCTAssertEqual(s.localPrediction, Double(fit[2]), accuracy: 1e-4 * scale, "\(name) local prediction")
        }
    }

    /// Four flat quadrants: every superpixel lies inside one quadrant, the labels are 0..<count, each one
    /// 4-connected region, and their number is near the request.
    func testSuperpixelsFollowEdgesAndAreConnected() {
        let w = 64, h = 48
        var pixels = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { pixels[y * w + x] = (x < 40 ? 0.2 : 0.7) + (y < 20 ? 0.25 : 0) } }
        let (labels, count) = SLIC(segments: 24).labels(pixels, channels: 1, width: w, height: h)
        XCTAssertEqual(Set(labels), Set((0..<Int32(count)).map { $0 }))
        XCTAssertTrue((12...36).contains(count), "\(count) superpixels for 24")
        for l in 0..<Int32(count) {
            let members = labels.indices.filter { labels[$0] == l }
            XCTAssertEqual(Set(members.map { pixels[$0] }).count, 1, "superpixel \(l) straddles a quadrant edge")
            // One 4-connected piece: a flood fill from its first pixel reaches all of it.
            var seen: Set<Int> = [members[0]], stack = [members[0]]
            while let p = stack.popLast() {
                for q in [p - 1, p + 1, p - w, p + w]
                where q >= 0 && q < w * h && labels[q] == l && !seen.contains(q)
                    && (abs(q % w - p % w) <= 1)
                {
                    seen.insert(q)
                    stack.append(q)
                }
            }
            XCTAssertEqual(seen.count, members.count, "superpixel \(l) is not connected")
        }
        // RGB goes through CIELAB: a red/green split is found as well as a gray one.
        var rgb = [Float](repeating: 0, count: 3 * w * h)
        for p in 0..<(w * h) where p % w < 32 { rgb[p] = 1 }
        for p in 0..<(w * h) where p % w >= 32 { rgb[w * h + p] = 1 }
        let (colour, colourCount) = SLIC(segments: 12).labels(rgb, channels: 3, width: w, height: h)
        for l in 0..<Int32(colourCount) {
            XCTAssertEqual(Set(colour.indices.filter { colour[$0] == l }.map { $0 % w < 32 }).count, 1)
        }
    }

    /// The model's class depends only on the pixels of a box: the superpixels that touch the box rank above every
    /// superpixel that does not, for each fill, and the same seed gives the same weights.
    func testLIMERanksTheSuperpixelsTheModelUsesFirst() {
        let size = 48, box = PixelWindow(x: 14, y: 20, width: 12, height: 10)
        let model = FaithfulnessTests.BoxClassifier(size: size, box: box)
        let planes = FaithfulnessTests.BoxClassifier.input(size: size, seed: 2).0
        let pixels = planes.map { max(0, min(1, ($0 + 3) / 6)) }
        for fill in LIMEFill.allCases {
            var lime = LIME(segments: 36, samples: 300, fill: fill, seed: 1)
            lime.slic.compactness = 40
            let result = lime.explain(
                planes: planes, pixels: pixels, channels: 1, width: size, height: size, model: model,
                target: .classLogit(1), window: { Tensor($0, shape: [1, 1, size, size]) })
            let count = result.surrogate.weights.count
            var touches = [Bool](repeating: false, count: count)
            for y in box.y..<(box.y + box.height) {
                for x in box.x..<(box.x + box.width) { touches[Int(result.labels[y * size + x])] = true }
            }
            let ranked = (0..<count).sorted { result.surrogate.weights[$0] > result.surrogate.weights[$1] }
            let inBox = touches.filter { $0 }.count
            print(
                "LIME \(fill): \(count) superpixels, \(inBox) touch the box; R^2 \(result.surrogate.r2); top weights "
                    + ranked.prefix(inBox + 1).map { String(format: "%.3f", result.surrogate.weights[$0]) }.joined(
                        separator: " "))
            XCTAssertGreaterThan(inBox, 1)
            XCTAssertEqual(Set(ranked.prefix(inBox)), Set((0..<count).filter { touches[$0] }), "\(fill)")
            XCTAssertGreaterThan(result.surrogate.r2, 0.5)
            XCTAssertEqual(result.map.count, size * size)
            let again = lime.explain(
                planes: planes, pixels: pixels, channels: 1, width: size, height: size, model: model,
                target: .classLogit(1), window: { Tensor($0, shape: [1, 1, size, size]) })
            XCTAssertEqual(again.surrogate.weights, result.surrogate.weights)
        }
    }
}
