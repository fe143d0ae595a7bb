import Foundation
import TesseraObjects
import XCTest

final class ConnectedComponentsTests: XCTestCase {
    /// A mask from rows of characters: '.' is 0, digits are classes.
    func mask(_ rows: [String]) -> (labels: [UInt8], width: Int, height: Int) {
        let labels = rows.flatMap { $0.map { $0 == "." ? UInt8(0) : UInt8(String($0))! } }
        return (labels, rows[0].count, rows.count)
    }

    func testConnectivityClassesHolesAndBorders() {
        let m = mask([
            "11..2",
            "11.2.",
            "..1..",
            "333.3",
            "3.3..",
            "333.."
        ])
        let eight = ConnectedComponents(labels: m.labels, width: m.width, height: m.height, connectivity: .eight)
        let four = ConnectedComponents(labels: m.labels, width: m.width, height: m.height, connectivity: .four)
        // Eight: the 1s join diagonally, the two 2s join, the ring of 3s (with its hole) is one, the lone 3 another.
        XCTAssertEqual(eight.classes, [1, 2, 3, 3])
        XCTAssertEqual(four.classes, [1, 2, 2, 1, 3, 3])
        // Raster order of first pixels; class 0 (the ring's hole included) is no object.
        XCTAssertEqual(Array(eight.ids[0..<5]), [1, 1, 0, 0, 2])
        XCTAssertEqual(eight.ids[4 * 5 + 1], 0)
        XCTAssertEqual(eight.ids[3 * 5 + 4], 4)
        XCTAssertEqual(four.ids[2 * 5 + 2], 4)
        // Touching classes stay apart; objects on the border are kept whole.
        let touching = mask(["1122", "1122"])
        XCTAssertEqual(ConnectedComponents(labels: touching.labels, width: 4, height: 2).classes, [1, 2])
    }

    func testMeasurementsOfRectanglesDiscsAndEllipses() {
        let w = 200, h = 150
        var labels = [UInt8](repeating: 0, count: w * h)
        for y in 10..<30 { for x in 5..<45 { labels[y * w + x] = 1 } }  // 40 x 20 rectangle
        for y in 0..<h {
            for x in 0..<w {
                let dx = Double(x) - 100, dy = Double(y) - 60
                if dx * dx + dy * dy <= 30 * 30 { labels[y * w + x] = 2 }  // disc, radius 30
                let ex = Double(x) - 150, ey = Double(y) - 110
                if ex * ex / (40 * 40) + ey * ey / (20 * 20) <= 1 { labels[y * w + x] = 1 }  // ellipse 40 x 20
            }
        }
        let objects = ConnectedComponents(labels: labels, width: w, height: h).objects
        XCTAssertEqual(objects.count, 3)
        let rect = objects[0], disc = objects[1], ellipse = objects[2]
        XCTAssertEqual(rect.area, 800)
        XCTAssertEqual(rect.centroidX, 24.5)
        XCTAssertEqual(rect.centroidY, 19.5)
        XCTAssertEqual(rect.box, .init(x: 5, y: 10, width: 40, height: 20))
        // A w x h rectangle's eccentricity: sqrt(1 - (h^2 - 1) / (w^2 - 1)) for its pixel centres.
        XCTAssertEqual(rect.eccentricity, (1 - (400.0 - 1) / (1600 - 1)).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(disc.objectClass, 2)
        XCTAssertEqual(Double(disc.area), Double.pi * 900, accuracy: Double.pi * 900 * 0.01)
        XCTAssertEqual(disc.centroidX, 100, accuracy: 1e-9)
        XCTAssertEqual(disc.centroidY, 60, accuracy: 1e-9)
        XCTAssertEqual(disc.equivalentDiameter, 60, accuracy: 0.6)
        XCTAssertLessThan(disc.eccentricity, 0.05)
        XCTAssertEqual(ellipse.eccentricity, (1 - 0.25).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(Double(ellipse.area), Double.pi * 800, accuracy: Double.pi * 800 * 0.01)
    }
}
