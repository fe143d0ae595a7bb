import Foundation

/// What `objects/<name>.csv` reports per object, as skimage's `regionprops` defines it: pixel area, centroid
/// (mean x and y of the pixel centres), bounding box (first column and row, width, height), equivalent diameter
/// (of the disc with the same area), eccentricity (of the ellipse with the same second central moments).
public struct ObjectMeasurement: Equatable, Sendable {
    public var id: Int
    public var objectClass: Int
    public var area: Int
    public var centroidX: Double, centroidY: Double
    public var box: (x: Int, y: Int, width: Int, height: Int)
    public var equivalentDiameter: Double
    public var eccentricity: Double

    public static func == (a: ObjectMeasurement, b: ObjectMeasurement) -> Bool {
        a.id == b.id && a.objectClass == b.objectClass && a.area == b.area && a.centroidX == b.centroidX
            && a.centroidY == b.centroidY && a.box == b.box && a.equivalentDiameter == b.equivalentDiameter
            && a.eccentricity == b.eccentricity
    }

    /// The measurements of every object of `components`, by id.
    public static func measure(_ components: ConnectedComponents) -> [ObjectMeasurement] {
        let n = components.count
        var area = [Int](repeating: 0, count: n)
        var sx = [Double](repeating: 0, count: n), sy = sx, sxx = sx, syy = sx, sxy = sx
        var x0 = [Int](repeating: .max, count: n), y0 = x0, x1 = [Int](repeating: .min, count: n), y1 = x1
        let w = components.width
        for (i, id) in components.ids.enumerated() where id > 0 {
            let k = Int(id) - 1, x = i % w, y = i / w
            area[k] += 1
            sx[k] += Double(x)
            sy[k] += Double(y)
            sxx[k] += Double(x * x)
            syy[k] += Double(y * y)
            sxy[k] += Double(x * y)
            x0[k] = min(x0[k], x)
            x1[k] = max(x1[k], x)
            y0[k] = min(y0[k], y)
            y1[k] = max(y1[k], y)
        }
        return (0..<n).map { k in
            let a = Double(area[k]), cx = sx[k] / a, cy = sy[k] / a
            // Central second moments per pixel; the ellipse's axes are 4 sqrt(eigenvalue).
            let mxx = sxx[k] / a - cx * cx, myy = syy[k] / a - cy * cy, mxy = sxy[k] / a - cx * cy
            let mean = (mxx + myy) / 2, spread = (((mxx - myy) / 2) * ((mxx - myy) / 2) + mxy * mxy).squareRoot()
            let major = mean + spread, minor = max(0, mean - spread)
            return ObjectMeasurement(
                id: k + 1, objectClass: components.classes[k], area: area[k], centroidX: cx, centroidY: cy,
                box: (x0[k], y0[k], x1[k] - x0[k] + 1, y1[k] - y0[k] + 1),
                equivalentDiameter: (4 * a / Double.pi).squareRoot(),
                eccentricity: major > 0 ? (1 - minor / major).squareRoot() : 0)
        }
    }
}
