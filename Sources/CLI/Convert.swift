import ArgumentParser
import Foundation
import TesseraData

/// `tessera convert`: decodes an image and re-encodes it as PNG, JPEG or TIFF by the output extension.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode an image and re-encode it (PNG, JPEG or TIFF by extension).")

    @Argument(help: "Input image (PNG, JPEG or TIFF: its first slice).")
    var input: String

    @Argument(help: "Output file: .png, .jpg, .jpeg, .tif or .tiff (tiled, deflate).")
    var output: String

    @Flag(help: "Force 8-bit RGBA.")
    var rgba8 = false

    @Option(help: "JPEG quality 1-100.")
    var quality = 90

    func run() throws {
        var options = ImageCodec.Options()
        options.rgba8 = rgba8
        do {
            let image = try ImageCodec.decode(URL(fileURLWithPath: input), options: options)
            try ImageCodec.write(image, to: URL(fileURLWithPath: output), quality: quality)
            print(
                "\(input) -> \(output): \(image.width)x\(image.height), \(image.channels) channels, \(image.bitDepth)-bit"
            )
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
