import Foundation

/// What `objects/<name>.csv` reports per object, as skimage's `regionprops` defines it: pixel area, centroid
/// (mean x and y of the pixel centres), bounding box (first column and row, width, height), equivalent diameter
/// (of the disc with the same area), eccentricity (of the ellipse with the same second central moments), and the
/// mean, minimum and maximum of each intensity channel over the object's pixels.
public struct ObjectMeasurement: Equatable, Sendable {
    public var id: Int
    public var objectClass: Int
    public var area: Int
    public var centroidX: Double, centroidY: Double
    public var box: Box
    public var equivalentDiameter: Double
    public var eccentricity: Double
    public var meanIntensity: [Double] = [], minIntensity: [Float] = [], maxIntensity: [Float] = []

    public struct Box: Equatable, Sendable {
        public var x: Int, y: Int, width: Int, height: Int

        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    /// Whether the object reaches the edge of a `width` x `height` image (skimage's `clear_border`).
    public func touchesBorder(width: Int, height: Int) -> Bool {
        box.x == 0 || box.y == 0 || box.x + box.width == width || box.y + box.height == height
    }
}

/// Sums an object's measurements are made from, per provisional label: they add up run by run and merge when
/// labels join, so objects are measured without a second pass over their pixels.
struct ObjectMoments: Sendable {
    let channels: Int
    var area: [Int] = [0]
    var sx: [Double] = [0], sy: [Double] = [0], sxx: [Double] = [0], syy: [Double] = [0], sxy: [Double] = [0]
    var x0: [Int32] = [0], y0: [Int32] = [0], x1: [Int32] = [0], y1: [Int32] = [0]
    /// Linear index of the first pixel (raster order).
    var first: [Int] = [0]
    /// Per channel, per label.
    var sum: [[Double]], low: [[Float]], high: [[Float]]

    init(channels: Int) {
        self.channels = channels
        sum = [[Double]](repeating: [0], count: channels)
        low = [[Float]](repeating: [0], count: channels)
        high = low
    }

    mutating func append() {
        area.append(0)
        sx.append(0)
        sy.append(0)
        sxx.append(0)
        syy.append(0)
        sxy.append(0)
        x0.append(.max)
        y0.append(.max)
        x1.append(.min)
        y1.append(.min)
        first.append(.max)
        for c in 0..<channels {
            sum[c].append(0)
            low[c].append(.infinity)
            high[c].append(-.infinity)
        }
    }

    /// Pixels x0...x1 of row y: sums of x and x^2 in closed form.
    mutating func addRun(_ l: Int, y: Int, x0 a: Int, x1 b: Int, first index: Int) {
        let n = Double(b - a + 1), fy = Double(y)
        let s1 = n * Double(a + b) / 2
        func squares(_ m: Int) -> Double { let d = Double(m); return d * (d + 1) * (2 * d + 1) / 6 }
        area[l] += b - a + 1
        sx[l] += s1
        sy[l] += n * fy
        sxx[l] += squares(b) - squares(a - 1)
        syy[l] += n * fy * fy
        sxy[l] += fy * s1
        x0[l] = min(x0[l], Int32(a))
        x1[l] = max(x1[l], Int32(b))
        y0[l] = min(y0[l], Int32(y))
        y1[l] = max(y1[l], Int32(y))
        first[l] = min(first[l], index)
    }

    mutating func addIntensity(_ l: Int, channel c: Int, _ values: Slice<UnsafeBufferPointer<Float>>) {
        var s = 0.0, lo = low[c][l], hi = high[c][l]
        for v in values {
            s += Double(v)
            lo = min(lo, v)
            hi = max(hi, v)
        }
        sum[c][l] += s
        low[c][l] = lo
        high[c][l] = hi
    }

    mutating func merge(_ l: Int, into r: Int) {
        area[r] += area[l]
        sx[r] += sx[l]
        sy[r] += sy[l]
        sxx[r] += sxx[l]
        syy[r] += syy[l]
        sxy[r] += sxy[l]
        x0[r] = min(x0[r], x0[l])
        x1[r] = max(x1[r], x1[l])
        y0[r] = min(y0[r], y0[l])
        y1[r] = max(y1[r], y1[l])
        first[r] = min(first[r], first[l])
        for c in 0..<channels {
            sum[c][r] += sum[c][l]
            low[c][r] = min(low[c][r], low[c][l])
            high[c][r] = max(high[c][r], high[c][l])
        }
    }

    func measurement(_ l: Int, width: Int, height: Int) -> ObjectMeasurement {
        let a = Double(area[l]), cx = sx[l] / a, cy = sy[l] / a
        // Central second moments per pixel; the ellipse's axes are 4 sqrt(eigenvalue).
        let mxx = sxx[l] / a - cx * cx, myy = syy[l] / a - cy * cy, mxy = sxy[l] / a - cx * cy
        let mean = (mxx + myy) / 2, spread = (((mxx - myy) / 2) * ((mxx - myy) / 2) + mxy * mxy).squareRoot()
        let major = mean + spread, minor = max(0, mean - spread)
        return ObjectMeasurement(
            id: 0, objectClass: 0, area: area[l], centroidX: cx, centroidY: cy,
            box: .init(
                x: Int(x0[l]), y: Int(y0[l]), width: Int(x1[l] - x0[l]) + 1, height: Int(y1[l] - y0[l]) + 1),
            equivalentDiameter: (4 * a / Double.pi).squareRoot(),
            eccentricity: major > 0 ? min(1, max(0, 1 - minor / major)).squareRoot() : 0,
            meanIntensity: (0..<channels).map { sum[$0][l] / a }, minIntensity: (0..<channels).map { low[$0][l] },
            maxIntensity: (0..<channels).map { high[$0][l] })
    }
}
