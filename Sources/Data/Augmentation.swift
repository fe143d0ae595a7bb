import CKernels
import Foundation
import TesseraEngine

/// One augmentation step: geometric ones move image and mask together, photometric ones touch the image only.
public protocol Augmentation: Sendable {
    /// Probability that the step is applied to a sample.
    var probability: Double { get }
    /// Applies the step (already decided to happen) with randomness drawn from `g`.
    func transform(_ sample: inout AugmentationSample, _ g: inout RandomGenerator)
}

extension Augmentation {
    /// Applies the step with its probability.
    public func apply(_ sample: inout AugmentationSample, _ g: inout RandomGenerator) {
        if Double(g.nextFloat()) < probability { transform(&sample, &g) }
    }
}

extension RandomGenerator {
    /// Uniform in [low, high].
    mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * Double(nextFloat()) }
}

/// Steps applied in order, seeded per sample: the same seed and sample index give the same result.
public struct AugmentationPipeline: Sendable {
    public var steps: [any Augmentation]
    public init(_ steps: [any Augmentation]) { self.steps = steps }

    /// Runs every step on a copy of `sample`, with a stream derived from `seed` and `index`.
    public func callAsFunction(_ sample: AugmentationSample, seed: UInt64, index: Int) -> AugmentationSample {
        callAsFunction(seed: seed, index: index) { _ in sample }
    }

    /// Runs every step on the sample `load` produces. `load` gets a function from the full sample's size to the
    /// window a leading `WindowedAugmentation` keeps (nil: everything), so it can decode just that window; the
    /// result is the same as loading everything and cropping.
    public func callAsFunction(
        seed: UInt64, index: Int,
        load: (_ window: (_ width: Int, _ height: Int) -> PixelWindow?) throws -> AugmentationSample
    )
        rethrows -> AugmentationSample
    {
        var g = RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
        var done = 0
        var s = try load { width, height in
            guard let first = steps.first as? any WindowedAugmentation else { return nil }
            var probe = g
            guard Double(probe.nextFloat()) < first.probability,
                let window = first.window(width: width, height: height, &probe)
            else { return nil }
            g = probe
            done = 1
            return window
        }
        for step in steps.dropFirst(done) { step.apply(&s, &g) }
        return s
    }
}

/// A step whose whole effect is keeping a window of its input, so the window can be decoded alone.
public protocol WindowedAugmentation: Augmentation {
    /// The window kept from a `width` x `height` input, drawn from `g` exactly as `transform` draws it; nil (with
    /// nothing drawn) when the step does more than crop for this size.
    func window(width: Int, height: Int, _ g: inout RandomGenerator) -> PixelWindow?
}

// MARK: - Geometric

/// Mirrors left-right.
public struct HorizontalFlip: Augmentation {
    public var probability: Double
    public init(probability: Double = 0.5) { self.probability = probability }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let w = s.width
        s.remap(width: w, height: s.height, origin: (w - 1, 0), stepX: (-1, 0), stepY: (0, 1))
    }
}

/// Mirrors top-bottom.
public struct VerticalFlip: Augmentation {
    public var probability: Double
    public init(probability: Double = 0.5) { self.probability = probability }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let h = s.height
        s.remap(width: s.width, height: h, origin: (0, h - 1), stepX: (1, 0), stepY: (0, -1))
    }
}

/// Rotates by 90, 180 or 270 degrees (chosen uniformly).
public struct Rotate90: Augmentation {
    public var probability: Double
    public init(probability: Double = 0.5) { self.probability = probability }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let w = s.width, h = s.height
        switch 1 + g.nextInt(3) {
        case 1: s.remap(width: h, height: w, origin: (0, h - 1), stepX: (0, -1), stepY: (1, 0))  // 90 clockwise
        case 2: s.remap(width: w, height: h, origin: (w - 1, h - 1), stepX: (-1, 0), stepY: (0, -1))  // 180
        default: s.remap(width: h, height: w, origin: (w - 1, 0), stepX: (0, 1), stepY: (-1, 0))  // 270 clockwise
        }
    }
}

/// A random `size` x `size` window (images smaller than the window are mirrored up to it).
public struct RandomCrop: WindowedAugmentation {
    public var probability: Double
    public var size: Int
    public init(size: Int, probability: Double = 1) {
        self.size = size
        self.probability = probability
    }
    public func window(width: Int, height: Int, _ g: inout RandomGenerator) -> PixelWindow? {
        guard width >= size && height >= size else { return nil }
        let x0 = g.nextInt(width - size + 1), y0 = g.nextInt(height - size + 1)
        return PixelWindow(x: x0, y: y0, width: size, height: size)
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        if s.width < size || s.height < size {
            let x0 = Float(min(0, (s.width - size) / 2)), y0 = Float(min(0, (s.height - size) / 2))
            s.warp(width: max(size, s.width), height: max(size, s.height)) { (Float($0) + x0, Float($1) + y0) }
        }
        let w = window(width: s.width, height: s.height, &g)!
        s.crop(x0: w.x, y0: w.y, width: w.width, height: w.height)
    }
}

/// A random region of `scale` x the area and `ratio` aspect, resized to `size` x `size` (torchvision's
/// RandomResizedCrop).
public struct RandomResizedCrop: Augmentation {
    public var probability: Double
    public var size: Int
    public var scale: ClosedRange<Double>
    public var ratio: ClosedRange<Double>
    public init(
        size: Int, scale: ClosedRange<Double> = 0.5...1, ratio: ClosedRange<Double> = 0.75...1.3333,
        probability: Double = 1
    ) {
        self.size = size
        self.scale = scale
        self.ratio = ratio
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let area = Double(s.width * s.height)
        var cw = s.width, ch = s.height
        for _ in 0..<10 {
            let a = area * g.uniform(scale.lowerBound, scale.upperBound)
            let r = Foundation.exp(g.uniform(Foundation.log(ratio.lowerBound), Foundation.log(ratio.upperBound)))
            let w = Int((a * r).squareRoot().rounded()), h = Int((a / r).squareRoot().rounded())
            if w > 0 && h > 0 && w <= s.width && h <= s.height { cw = w; ch = h; break }
        }
        let x0 = Float(g.nextInt(s.width - cw + 1)), y0 = Float(g.nextInt(s.height - ch + 1))
        let sx = Float(cw) / Float(size), sy = Float(ch) / Float(size)
        s.warp(width: size, height: size) { x, y in
            (x0 + (Float(x) + 0.5) * sx - 0.5, y0 + (Float(y) + 0.5) * sy - 0.5)
        }
    }
}

/// Rotation, scale, shear and translation about the centre, drawn uniformly from the given ranges.
public struct RandomAffine: Augmentation {
    public var probability: Double
    public var degrees: ClosedRange<Double>
    public var scale: ClosedRange<Double>
    public var shearDegrees: ClosedRange<Double>
    /// Fraction of the width / height.
    public var translate: Double
    public init(
        degrees: ClosedRange<Double> = -15...15, scale: ClosedRange<Double> = 0.9...1.1,
        shearDegrees: ClosedRange<Double> = -5...5, translate: Double = 0.05, probability: Double = 0.5
    ) {
        self.degrees = degrees
        self.scale = scale
        self.shearDegrees = shearDegrees
        self.translate = translate
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let angle = g.uniform(degrees.lowerBound, degrees.upperBound) * .pi / 180
        let k = g.uniform(scale.lowerBound, scale.upperBound)
        let shear = Foundation.tan(g.uniform(shearDegrees.lowerBound, shearDegrees.upperBound) * .pi / 180)
        let tx = g.uniform(-translate, translate) * Double(s.width),
            ty = g.uniform(-translate, translate) * Double(s.height)
        // Forward map: p' = R S H p + t about the centre; sample through its inverse.
        let c = Foundation.cos(angle), sn = Foundation.sin(angle)
        let m00 = k * c, m01 = k * (c * shear - sn), m10 = k * sn, m11 = k * (sn * shear + c)
        let det = m00 * m11 - m01 * m10
        let i00 = m11 / det, i01 = -m01 / det, i10 = -m10 / det, i11 = m00 / det
        let cx = Double(s.width - 1) / 2, cy = Double(s.height - 1) / 2
        s.warp(width: s.width, height: s.height) { x, y in
            let dx = Double(x) - cx - tx, dy = Double(y) - cy - ty
            return (Float(i00 * dx + i01 * dy + cx), Float(i10 * dx + i11 * dy + cy))
        }
    }
}

/// Elastic deformation as in the U-Net paper: random displacements on a coarse grid (normal, `sigma` pixels)
/// interpolated smoothly (bicubic) to every pixel.
public struct ElasticDeformation: Augmentation {
    public var probability: Double
    public var gridPoints: Int
    public var sigma: Double
    public init(gridPoints: Int = 3, sigma: Double = 10, probability: Double = 0.5) {
        self.gridPoints = gridPoints
        self.sigma = sigma
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let n = max(2, gridPoints)
        let dx = (0..<(n * n)).map { _ in Double(g.nextNormal()) * sigma }
        let dy = (0..<(n * n)).map { _ in Double(g.nextNormal()) * sigma }
        let w = s.width, h = s.height
        // Catmull-Rom weights of the 4 grid nodes around each pixel, per axis (computed once, not per pixel).
        func taps(_ size: Int) -> (base: [Int32], weights: [Float]) {
            var base = [Int32](repeating: 0, count: size), weights = [Float](repeating: 0, count: 4 * size)
            for i in 0..<size {
                let gi = Double(i) / Double(max(size - 1, 1)) * Double(n - 1)
                let b = min(Int(gi), n - 2)
                let t = gi - Double(b)
                let t2 = t * t, t3 = t2 * t
                base[i] = Int32(b)
                weights[4 * i] = Float(-0.5 * t3 + t2 - 0.5 * t)
                weights[4 * i + 1] = Float(1.5 * t3 - 2.5 * t2 + 1)
                weights[4 * i + 2] = Float(-1.5 * t3 + 2 * t2 + 0.5 * t)
                weights[4 * i + 3] = Float(0.5 * t3 - 0.5 * t2)
            }
            return (base, weights)
        }
        let tx = taps(w), ty = taps(h)
        // Source coordinate = pixel + displacement: interpolated along x for every grid row, then along y.
        func field(_ grid: [Double], alongX: Bool) -> [Float] {
            var rows = [Float](repeating: 0, count: n * w)
            for j in 0..<n {
                for x in 0..<w {
                    var v: Float = 0
                    for k in 0..<4 {
                        v += tx.weights[4 * x + k] * Float(grid[j * n + min(max(Int(tx.base[x]) - 1 + k, 0), n - 1)])
                    }
                    rows[j * w + x] = v
                }
            }
            return [Float](unsafeUninitializedCapacity: w * h) { out, count in
                tk_field_rows(rows, n, ty.base, ty.weights, w, h, alongX ? 1 : 0, out.baseAddress)
                count = w * h
            }
        }
        let sx = field(dx, alongX: true), sy = field(dy, alongX: false)
        s.warp(width: w, height: h, sx: sx, sy: sy)
    }
}

// MARK: - Photometric (image only)

/// Adds a uniform offset in `delta`.
public struct Brightness: Augmentation {
    public var probability: Double
    public var delta: ClosedRange<Double>
    public init(delta: ClosedRange<Double> = -0.1...0.1, probability: Double = 0.5) {
        self.delta = delta
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let d = Float(g.uniform(delta.lowerBound, delta.upperBound))
        for i in s.image.indices { s.image[i] += d }
    }
}

/// Scales deviations from each channel's mean by a factor in `factor`.
public struct Contrast: Augmentation {
    public var probability: Double
    public var factor: ClosedRange<Double>
    public init(factor: ClosedRange<Double> = 0.8...1.2, probability: Double = 0.5) {
        self.factor = factor
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let f = Float(g.uniform(factor.lowerBound, factor.upperBound))
        let n = s.width * s.height
        for c in 0..<s.channels {
            let mean = s.image[(c * n)..<((c + 1) * n)].reduce(0, +) / Float(n)
            for i in (c * n)..<((c + 1) * n) { s.image[i] = mean + (s.image[i] - mean) * f }
        }
    }
}

/// Raises [0, 1] intensities to a power in `gamma`.
public struct Gamma: Augmentation {
    public var probability: Double
    public var gamma: ClosedRange<Double>
    public init(gamma: ClosedRange<Double> = 0.7...1.5, probability: Double = 0.5) {
        self.gamma = gamma
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let e = Float(g.uniform(gamma.lowerBound, gamma.upperBound))
        for i in s.image.indices { s.image[i] = Foundation.pow(max(s.image[i], 0), e) }
    }
}

/// Adds zero-mean normal noise with a standard deviation drawn from `std`.
public struct GaussianNoise: Augmentation {
    public var probability: Double
    public var std: ClosedRange<Double>
    public init(std: ClosedRange<Double> = 0...0.05, probability: Double = 0.5) {
        self.std = std
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let sd = Float(g.uniform(std.lowerBound, std.upperBound))
        for i in s.image.indices { s.image[i] += g.nextNormal() * sd }
    }
}

/// Separable gaussian blur with sigma drawn from `sigma` (kernel radius 3 sigma, mirrored borders).
public struct GaussianBlur: Augmentation {
    public var probability: Double
    public var sigma: ClosedRange<Double>
    public init(sigma: ClosedRange<Double> = 0.5...1.5, probability: Double = 0.3) {
        self.sigma = sigma
        self.probability = probability
    }
    public func transform(_ s: inout AugmentationSample, _ g: inout RandomGenerator) {
        let sd = g.uniform(sigma.lowerBound, sigma.upperBound)
        let r = max(1, Int((3 * sd).rounded(.up)))
        var k = (-r...r).map { Float(Foundation.exp(-Double($0 * $0) / (2 * sd * sd))) }
        let total = k.reduce(0, +)
        k = k.map { $0 / total }
        let w = s.width, h = s.height, n = w * h
        var tmp = [Float](repeating: 0, count: n)
        for c in 0..<s.channels {
            let base = c * n
            for y in 0..<h {
                for x in 0..<w {
                    var acc: Float = 0
                    for t in -r...r { acc += k[t + r] * s.image[base + y * w + mirrored(x + t, w)] }
                    tmp[y * w + x] = acc
                }
            }
            for y in 0..<h {
                for x in 0..<w {
                    var acc: Float = 0
                    for t in -r...r { acc += k[t + r] * tmp[mirrored(y + t, h) * w + x] }
                    s.image[base + y * w + x] = acc
                }
            }
        }
    }
}
