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
        // A mis-shaped key is reported (and not copied) without strict, thrown with it, and nothing changes.
        let report = try m.load(["layer1.weight": Tensor.zeros([4]), "extra": Tensor.zeros([1])], strict: false)
        XCTAssertEqual(report.misshaped, [LoadReport.Misshaped(name: "layer1.weight", file: [4], model: [3])])
        XCTAssertEqual(report.unexpected, ["extra"])
        XCTAssertEqual(report.missing, ["bn1.weight", "layer1.running_mean", "bn1.running_mean"])
        XCTAssertEqual(m.a.weight.scalars, [4, 5, 6])
        XCTAssertThrowsError(try m.load(["layer1.weight": Tensor.zeros([4])])) {
            XCTAssertTrue("\($0)".contains("1 mis-shaped: layer1.weight (file [4], model [3])"), "\($0)")
        }
        XCTAssertThrowsError(try m.load(["nope": Tensor.zeros([1])]))
        m.eval()
        XCTAssertFalse(m.a.isTraining)
    }
}
