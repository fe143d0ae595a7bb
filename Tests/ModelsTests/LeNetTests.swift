import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN
import XCTest

final class LeNetTests: XCTestCase {
    func testLeNet5LayoutAndShapes() {
        var g = RandomGenerator(seed: 0)
        let model = LeNet5(classes: 10, generator: &g)
        XCTAssertEqual(model.parameters.map(\.count).reduce(0, +), 61_706, "LeNet-5 has 61,706 parameters")
        XCTAssertEqual(
            model.namedParameters().map(\.name),
            [
                "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"
            ])
        let x = Tensor.randn([3, 1, 32, 32], generator: &g)
        XCTAssertEqual(model(x).shape, [3, 10])
        XCTAssertEqual(LeNet5(classes: 4, style: .modern, generator: &g)(x).shape, [3, 4])
    }

    func testShapeSamplesAreSeededAndBoxed() {
        let a = ShapeSample(size: 32, seed: 5, index: 17), b = ShapeSample(size: 32, seed: 5, index: 17)
        XCTAssertEqual(a.pixels, b.pixels)
        XCTAssertEqual(a.kind, b.kind)
        XCTAssertNotEqual(a.pixels, ShapeSample(size: 32, seed: 6, index: 17).pixels)
        XCTAssertTrue(a.box.x >= 0 && a.box.y >= 0 && a.box.x + a.box.width <= 32 && a.box.y + a.box.height <= 32)
        let kinds = Set((0..<40).map { ShapeSample(size: 32, seed: 1, index: $0).kind })
        XCTAssertEqual(kinds.count, 4, "all four shapes occur")
    }
}
