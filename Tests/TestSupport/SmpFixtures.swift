import Foundation
import XCTest

/// One segmentation_models_pytorch case of the torch fixture folder (`NAME.smp.json`, schema in its README): the
/// `Unet` it describes, its state dict and its reference input and logits.
public struct SmpCase: Decodable {
    /// The case's file name (`unet_resnet18.smp.json`).
    public var name = ""
    public let encoder_name: String
    public let in_channels: Int
    public let classes: Int
    public let decoder_channels: [Int]
    /// The state dict (safetensors), relative to the fixture folder.
    public let weights: String
    /// `input` and `logits` (safetensors), relative to the fixture folder.
    public let reference: String

    enum CodingKeys: String, CodingKey {
        case encoder_name, in_channels, classes, decoder_channels, weights, reference
    }

    /// Every case found in the fixture folder (at least one, or the test fails), sorted by name; the folder with it.
    public static func all(file: StaticString = #filePath, line: UInt = #line) throws -> (cases: [SmpCase], folder: URL)
    {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder, file: file, line: line)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".smp.json") }.sorted()
        XCTAssertFalse(names.isEmpty, "no *.smp.json case in \(folder.path)", file: file, line: line)
        let cases = try names.map { name in
            var c = try JSONDecoder().decode(SmpCase.self, from: Data(contentsOf: folder.appendingPathComponent(name)))
            c.name = name
            return c
        }
        return (cases, folder)
    }
}
