import Foundation
import TesseraData
import TesseraExplain
import TesseraInference
import TesseraModels
import TesseraNN
import TesseraObjects
import TestSupport
import XCTest

/// The README lists each closed set's values as `a\|b\|c` (output kinds `a,b,c`), in the enum's order: adding a case without documenting
/// it, or documenting one that does not exist, fails here.
final class ReadmeChoicesTests: XCTestCase {
    func values<E: CaseIterable & RawRepresentable>(_: E.Type, separator: String = "\\|") -> String
    where E.RawValue == String {
        E.allCases.map(\.rawValue).joined(separator: separator)
    }

    func testREADMEListsEveryEnumsCases() throws {
        let readme = try String(
            contentsOf: SharedFixtures.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let lists = [
            // `--model unet (...) or --model resnet18-unet\|...`: the plain U-Net is documented apart.
            Architecture.allCases.filter { $0 != .unet }.map(\.rawValue).joined(separator: "\\|"),
            values(MaskEncoding.self), values(OptimizerKind.self), values(LearningRateSchedule.Kind.self),
            values(SegmentationLoss.self), values(ValidationMetric.self), values(UNetConfig.Upsampling.self),
            values(UNetConfig.ConvPadding.self), values(TiledInference.Blend.self), values(CAMMethod.self),
            values(Colormap.self), values(OverlayFormat.self), values(CAMMapFormat.self), values(OutputFileFormat.self),
            values(TIFFPages.self), values(InstanceMethod.self), values(SeedSource.self), values(TruthKind.self),
            Connectivity.allCases.map { "\($0.rawValue)" }.joined(separator: "\\|"),
            // Output kinds are given as a comma-separated list.
            values(SegmentOutput.self, separator: ","), values(ExplainOutput.self, separator: ",")
        ]
        for list in lists { XCTAssertTrue(readme.contains(list), "README does not list \(list)") }
    }
}
