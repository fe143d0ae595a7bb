import Foundation
import TesseraData
import TesseraEngine
import XCTest

final class BorderWeightMapTests: XCTestCase {
    /// Against a direct evaluation of the paper's formula (distances to every object pixel, nearest two objects)
    /// on random blob images, including objects touching the image edge and gaps of one pixel.
    func testMatchesDirectEvaluation() {
        var g = RandomGenerator(seed: 3)
        let map = BorderWeightMap()
        for trial in 0..<6 {
            let w = 24 + trial * 5, h = 20 + trial * 3
            var labels = [Int32](repeating: 0, count: w * h)
            for _ in 0..<(4 + trial) {
                let cx = g.nextInt(w), cy = g.nextInt(h), rx = 1 + g.nextInt(6), ry = 1 + g.nextInt(6)
                for y in max(0, cy - ry)...min(h - 1, cy + ry) {
                    for x in max(0, cx - rx)...min(w - 1, cx + rx) { labels[y * w + x] = 1 }
                }
            }
            // Cut one-pixel background gaps so that neighbouring objects nearly touch.
            for x in 0..<w { labels[(h / 2) * w + x] = 0 }
            let got = map.weights(labels: labels, width: w, height: h)
            // Direct: components by flood fill, then for each background pixel the two smallest per-object distances.
            var ids = [Int](repeating: -1, count: w * h), count = 0
            for s in labels.indices where labels[s] != 0 && ids[s] < 0 {
                var stack = [s]
                ids[s] = count
                while let i = stack.popLast() {
                    let x = i % w, y = i / w
                    for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                    where nx >= 0 && ny >= 0 && nx < w && ny < h {
                        let j = ny * w + nx
                        if labels[j] != 0 && ids[j] < 0 { ids[j] = count; stack.append(j) }
                    }
                }
                count += 1
            }
            let fg = Float(labels.filter { $0 != 0 }.count), n = Float(w * h)
            let classes: Float = fg > 0 && fg < n ? 2 : 1
            for i in labels.indices {
                var expected = labels[i] == 0 ? n / (classes * (n - fg)) : n / (classes * fg)
                if labels[i] == 0 && count >= 2 {
                    var best = [Float](repeating: .infinity, count: count)
                    for j in labels.indices where ids[j] >= 0 {
                        let dx = Float(i % w - j % w), dy = Float(i / w - j / w)
                        best[ids[j]] = min(best[ids[j]], (dx * dx + dy * dy).squareRoot())
                    }
                    let sorted = best.sorted()
                    expected += 10 * Foundation.exp(-(sorted[0] + sorted[1]) * (sorted[0] + sorted[1]) / 50)
                }
                XCTAssertEqual(got[i], expected, accuracy: 1e-3, "trial \(trial) pixel (\(i % w), \(i / w))")
                if Swift.abs(got[i] - expected) > 1e-3 { return }
            }
        }
    }

    /// Two squares two pixels apart: the gap gets close to w0 on top of its class weight, far background nothing.
    func testGapBetweenTouchingObjectsWeighsMost() {
        let w = 20, h = 10
        var labels = [Int32](repeating: 0, count: w * h)
        for y in 2..<8 { for x in 2..<9 { labels[y * w + x] = 1 }; for x in 11..<18 { labels[y * w + x] = 1 } }
        let weights = BorderWeightMap().weights(labels: labels, width: w, height: h)
        let background = Float(w * h) / (2 * Float(labels.filter { $0 == 0 }.count))
        XCTAssertEqual(weights[5 * w + 9], background + 10 * Foundation.exp(-9 / 50), accuracy: 1e-4, "d1 = 1, d2 = 2")
        XCTAssertEqual(weights[5 * w + 10], background + 10 * Foundation.exp(-9 / 50), accuracy: 1e-4, "d1 = 1, d2 = 2")
        XCTAssertGreaterThan(weights[5 * w + 9], 8)
        XCTAssertEqual(
            weights[5 * w + 5], Float(w * h) / (2 * Float(labels.filter { $0 != 0 }.count)), "inside an object")
    }
}
