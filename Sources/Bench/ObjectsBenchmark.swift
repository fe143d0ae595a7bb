import Foundation
import TesseraObjects

/// Seconds to find and measure the objects of a large generated mask (`tessera bench --objects`, the issue's
/// bar: an 8192x8192 mask with about 20,000 objects), whole and in blocks, by connected components and by
/// watershed; `Benchmarks/objects.py` times scikit-image on the same mask.
public struct ObjectsBenchmark {
    public let size: Int, count: Int

    public init(size: Int, count: Int) {
        self.size = size
        self.count = count
    }

    /// `count` ellipses (radii 6-30 pixels, any angle, classes 1 and 2, later ones drawn over earlier ones) and an
    /// intensity image (a level per class plus deterministic noise), row-major.
    public func scene() -> (mask: [UInt16], intensity: [Float]) {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        let n = size
        var mask = [UInt16](repeating: 0, count: n * n)
        for _ in 0..<count {
            let cx = uniform() * Double(n), cy = uniform() * Double(n)
            let a = 6 + 24 * uniform(), b = a * (0.5 + 0.5 * uniform()), t = Double.pi * uniform()
            let c = UInt16(1 + Int(uniform() * 2)), (cs, sn) = (cos(t), sin(t))
            let r = Int(a) + 1
            for y in max(0, Int(cy) - r)...min(n - 1, Int(cy) + r) {
                for x in max(0, Int(cx) - r)...min(n - 1, Int(cx) + r) {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    let u = dx * cs + dy * sn, v = -dx * sn + dy * cs
                    if u * u / (a * a) + v * v / (b * b) <= 1 { mask[y * n + x] = c }
                }
            }
        }
        let intensity = mask.indices.map { i in Float(mask[i]) * 60 + Float((i &* 2_654_435_761) % 37) }
        return (mask, intensity)
    }

    public struct Result: Sendable {
        public let objects: Int
        /// Median seconds: whole mask (components + measurements), in 2048-pixel blocks, watershed.
        public let whole: Double, blocks: Double, watershed: Double
        public let watershedObjects: Int
    }

    public func run(repeats: Int) -> Result {
        let (mask, intensity) = scene()
        func median(_ body: () -> Int) -> (Double, Int) {
            var times: [Double] = [], found = 0
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                found = body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return (times.sorted()[times.count / 2], found)
        }
        let n = size
        let (whole, objects) = median {
            Instances(mask: mask, width: n, height: n, settings: InstanceSettings(), intensity: [intensity]).objects
                .count
        }
        let (blocks, _) = median {
            var labeller = ObjectLabeller(width: n, height: n, channels: 1)
            var ids: [UInt32] = []
            let edge = 2048
            for y in stride(from: 0, to: n, by: edge) {
                for x in stride(from: 0, to: n, by: edge) {
                    let w = min(edge, n - x), h = min(edge, n - y)
                    var keys = [UInt32](repeating: 0, count: w * h), plane = [Float](repeating: 0, count: w * h)
                    for r in 0..<h {
                        for c in 0..<w {
                            keys[r * w + c] = UInt32(mask[(y + r) * n + x + c])
                            plane[r * w + c] = intensity[(y + r) * n + x + c]
                        }
                    }
                    labeller.label(keys: keys, x: x, y: y, width: w, height: h, intensity: [plane], into: &ids)
                }
            }
            return labeller.finish().objects.count
        }
        var settings = InstanceSettings()
        settings.method = .watershed
        let (watershed, split) = median {
            Instances(mask: mask, width: n, height: n, settings: settings, intensity: [intensity]).objects.count
        }
        return Result(objects: objects, whole: whole, blocks: blocks, watershed: watershed, watershedObjects: split)
    }
}
