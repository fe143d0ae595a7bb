import Foundation
import TesseraObjects
import XCTest

final class ObjectLabellerTests: XCTestCase {
    struct Generator {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
    }

    /// Blobs of 3 classes: random discs and bars, so objects cross every block edge in every direction.
    func blobs(width w: Int, height h: Int, seed: UInt64) -> [UInt32] {
        var g = Generator(state: seed)
        var keys = [UInt32](repeating: 0, count: w * h)
        for _ in 0..<(w * h / 60) {
            let cx = g.next(w), cy = g.next(h), r = 1 + g.next(6), c = UInt32(1 + g.next(3)), bar = g.next(4) == 0
            for y in max(0, cy - r)..<min(h, cy + r + 1) {
                for x in max(0, cx - (bar ? 3 * r : r))..<min(w, cx + (bar ? 3 * r : r) + 1)
                where bar || (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r {
                    keys[y * w + x] = c
                }
            }
        }
        return keys
    }

    /// Labelled in blocks (edges merged between them), a mask gives exactly the objects, numbers and
    /// measurements of the whole mask labelled at once, for every block size and both connectivities.
    func testBlocksGiveTheWholeImagesObjects() {
        let w = 97, h = 83
        for seed in 1...3 {
            let keys = blobs(width: w, height: h, seed: UInt64(seed))
            let intensity = [keys.indices.map { Float(($0 * 7919) % 251) }]
            for connectivity in Connectivity.allCases {
                let whole = ConnectedComponents(
                    keys: keys, width: w, height: h, connectivity: connectivity, intensity: intensity)
                XCTAssertGreaterThan(whole.count, 20)
                for (bw, bh) in [(1, 1), (7, 5), (16, 16), (97, 3), (40, 83)] {
                    var labeller = ObjectLabeller(width: w, height: h, connectivity: connectivity, channels: 1)
                    var provisional = [UInt32](repeating: 0, count: w * h)
                    var block: [UInt32] = []
                    for by in stride(from: 0, to: h, by: bh) {
                        for bx in stride(from: 0, to: w, by: bw) {
                            let cw = min(bw, w - bx), ch = min(bh, h - by)
                            let rows = (0..<ch).flatMap { y in (0..<cw).map { (by + y) * w + bx + $0 } }
                            labeller.label(
                                keys: rows.map { keys[$0] }, x: bx, y: by, width: cw, height: ch,
                                intensity: [rows.map { intensity[0][$0] }], into: &block)
                            for (k, i) in rows.enumerated() { provisional[i] = block[k] }
                        }
                    }
                    let table = labeller.finish()
                    table.resolve(&provisional)
                    XCTAssertEqual(provisional, whole.ids, "blocks \(bw)x\(bh), \(connectivity)")
                    XCTAssertEqual(table.objects.count, whole.objects.count)
                    for (a, b) in zip(table.objects, whole.objects) {
                        XCTAssertEqual(a.area, b.area)
                        XCTAssertEqual(a.box, b.box)
                        XCTAssertEqual(a.objectClass, b.objectClass)
                        XCTAssertEqual(a.centroidX, b.centroidX, accuracy: 1e-9)
                        XCTAssertEqual(a.eccentricity, b.eccentricity, accuracy: 1e-9)
                        XCTAssertEqual(a.meanIntensity[0], b.meanIntensity[0], accuracy: 1e-9)
                        XCTAssertEqual(a.minIntensity, b.minIntensity)
                        XCTAssertEqual(a.maxIntensity, b.maxIntensity)
                    }
                }
            }
        }
    }

    /// Against a plain flood fill of each object: the same partition (ids may only be renamed, and are not).
    func testAgreesWithAFloodFill() {
        let w = 64, h = 48
        let keys = blobs(width: w, height: h, seed: 9)
        for connectivity in Connectivity.allCases {
            var ids = [UInt32](repeating: 0, count: w * h)
            var next: UInt32 = 0
            for start in 0..<(w * h) where keys[start] != 0 && ids[start] == 0 {
                next += 1
                ids[start] = next
                var stack = [start]
                while let p = stack.popLast() {
                    for dy in -1...1 {
                        for dx in -1...1 where (dx != 0 || dy != 0) && (connectivity == .eight || dx == 0 || dy == 0) {
                            let x = p % w + dx, y = p / w + dy
                            guard x >= 0, x < w, y >= 0, y < h else { continue }
                            let n = y * w + x
                            if ids[n] == 0 && keys[n] == keys[p] {
                                ids[n] = next
                                stack.append(n)
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(ConnectedComponents(keys: keys, width: w, height: h, connectivity: connectivity).ids, ids)
        }
    }

    func testDistanceTransformIsExact() {
        let w = 31, h = 23
        let keys = blobs(width: w, height: h, seed: 4)
        let d = DistanceTransform.euclidean(width: w, height: h) { keys[$0] != 0 }
        for i in 0..<(w * h) {
            var best = Float.infinity
            for j in 0..<(w * h) where keys[j] == 0 {
                let dx = Float(i % w - j % w), dy = Float(i / w - j / w)
                best = min(best, (dx * dx + dy * dy).squareRoot())
            }
            XCTAssertEqual(d[i], keys[i] == 0 ? 0 : best, accuracy: 1e-4, "pixel \(i)")
        }
    }
}
