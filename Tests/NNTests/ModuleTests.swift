import TesseraEngine
import TesseraNN
import XCTest

final class ModuleTests: XCTestCase {
    final class Inner: Module {
        let weight: Tensor
        let runningMean: Tensor
        override init() {
            weight = Tensor([1, 2, 3], shape: [3])
            runningMean = Tensor.zeros([3])
            super.init()
            registerParameter("weight", weight)
            registerBuffer("running_mean", runningMean)
        }
    }

    final class Outer: Module {
        let a = Inner(), b = Inner()
        override init() {
            super.init()
            registerModule("layer1", a)
            registerModule("bn1", b)
        }
    }

    func testDottedKeysAndLoading() throws {
        let m = Outer()
        XCTAssertEqual(
            m.stateDict().map(\.name),
            ["layer1.weight", "bn1.weight", "layer1.running_mean", "bn1.running_mean"])
        try m.load([
            "layer1.weight": Tensor([4, 5, 6], shape: [3]), "bn1.weight": Tensor([7, 8, 9], shape: [3]),
            "layer1.running_mean": Tensor([1, 1, 1], shape: [3]), "bn1.running_mean": Tensor.zeros([3])
        ])
        XCTAssertEqual(m.a.weight.scalars, [4, 5, 6])
        XCTAssertEqual(m.a.runningMean.scalars, [1, 1, 1])
        XCTAssertThrowsError(try m.load(["layer1.weight": Tensor.zeros([4])], strict: false))
        XCTAssertThrowsError(try m.load(["nope": Tensor.zeros([1])]))
        m.eval()
        XCTAssertFalse(m.a.isTraining)
    }
}
