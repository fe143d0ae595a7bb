import Foundation
import TesseraData
import TesseraEngine

/// Images as a model takes them: decoded with the model's channel count, normalised planes.
public enum ModelInput {
    /// What one image may take on its way into a model: its decoded samples, the converted samples, the float
    /// planes and what the caller keeps per pixel (labels, probabilities). 4 GiB: an 8192 x 8192 gray image
    /// segmented into a mask needs 0.5 GiB; 2^28 pixels of 16-bit RGBA would need 7.5 GiB.
    public static let memoryBudget = 4 << 30

    /// Decodes `url` and converts it to the channels the model takes (`Image.converted(toChannels:file:)`),
    /// after checking from the header that the image fits `memoryBudget` with `bytesPerPixel` more per pixel.
    public static func decode(_ url: URL, channels wanted: Int, bytesPerPixel extra: Int = 0) throws -> Image {
        let data = try ImageCodec.readFile(url)
        let info = try ImageCodec.info(of: data, file: url.path)
        let sampleBytes = info.bitDepth > 8 ? 2 : 1
        let perPixel = (info.channels + wanted) * sampleBytes + 4 * wanted + extra
        let (bytes, overflow) = (info.width * info.height).multipliedReportingOverflow(by: perPixel)
        guard !overflow, bytes <= memoryBudget else {
            throw FileError(
                file: url.path,
                reason: String(
                    format: "a %dx%d image needs %.1f GiB on its way through the model "
                        + "(samples, float planes, outputs), over the %d GiB budget", info.width, info.height,
                    Double(info.width * info.height) * Double(perPixel) / Double(1 << 30), memoryBudget >> 30))
        }
        return try ImageCodec.decode(data, file: url.path).converted(toChannels: wanted, file: url.path)
    }

    /// Planar float samples [channels][height][width] normalised by per-channel mean and std.
    public static func planes(of image: Image, mean: [Float], std: [Float]) -> [Float] {
        var planes = AugmentationSample.planes(of: image)
        IntensityNormalization.meanStd(mean: mean, std: std).apply(toPlanes: &planes, channels: image.channels)
        return planes
    }
}
